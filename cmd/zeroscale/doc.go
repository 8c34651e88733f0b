// Command zeroscale runs Knative Services on one machine, without a
// cluster, and manages them with kn's verbs:
//
//	zeroscale serve -f hello.yaml          # serve the manifests, re-apply on change
//	zeroscale service create hello --cmd ./hello --env TARGET=World
//	zeroscale service update hello --env TARGET=Knative
//	zeroscale service update hello --tag hello-00001=old --traffic old=50,@latest=50
//	zeroscale revision list
//	zeroscale route list
//	zeroscale service wait hello          # exit 4 on --wait-timeout
//	zeroscale service delete hello
//
// serve runs a zeroscale.Server with the manifests' Services (a container
// with an image on the local Docker Engine, one with only a command as a
// local process) and its admin API; the other commands are clients of
// that API (--admin, ZEROSCALE_ADMIN; --token, ZEROSCALE_TOKEN). Output
// follows kn's: progress lines while a service gets ready, aligned
// tables, -o yaml|json. Exit codes: 0 success, 1 refused or failed, 2
// usage, 3 no server, 4 timed out.
package main
