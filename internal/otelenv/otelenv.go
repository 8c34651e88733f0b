// Package otelenv builds an OpenTelemetry TracerProvider from the
// standard environment variables, for the programs the module ships
// (the quickstart, cmd/zeroscale, cmd/queue-proxy): traces go to an OTLP
// collector when the variables say so, and nothing happens when they
// are unset. The library itself only ever takes a TracerProvider.
//
// Tracing is on when OTEL_TRACES_EXPORTER is "otlp", or when it is
// unset and OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; OTEL_TRACES_EXPORTER=none
// and OTEL_SDK_DISABLED=true turn it off. The protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
// "http/protobuf" (the default, port 4318) or "grpc" (port 4317). The
// official exporters read the rest themselves (endpoint, headers,
// timeout, compression, certificates), the SDK reads the sampler
// (OTEL_TRACES_SAMPLER) and the batch processor's bounds (OTEL_BSP_*),
// and the resource takes OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
package otelenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracerProvider returns a TracerProvider that batches spans to the
// OTLP collector the environment names, its resource's service.name
// serviceName unless OTEL_SERVICE_NAME says otherwise; or nil, nil when
// the environment asks for no traces. The caller must Shutdown it to
// flush the last spans.
func TracerProvider(ctx context.Context, serviceName string) (*sdktrace.TracerProvider, error) {
	if v := os.Getenv("OTEL_SDK_DISABLED"); v != "" {
		if off, err := strconv.ParseBool(v); err == nil && off {
			return nil, nil
		}
	}
	switch exp := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return nil, nil
	case "":
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: want otlp or none", exp)
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp *otlptrace.Exporter
	var err error
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME over the program's name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
