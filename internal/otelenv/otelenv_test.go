package otelenv_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/otelenv"
	"github.com/zeroscale/zeroscale/internal/otelenv/otlptest"
)

// unset clears every variable the package reads.
func unset(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
}

func TestNothingWhenUnset(t *testing.T) {
	unset(t)
	tp, err := otelenv.TracerProvider(t.Context(), "x")
	require.NoError(t, err)
	assert.Nil(t, tp)
	for k, v := range map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"} {
		unset(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv(k, v)
		tp, err := otelenv.TracerProvider(t.Context(), "x")
		require.NoError(t, err)
		assert.Nil(t, tp, "%s=%s", k, v)
	}
}

func TestBadValuesNamed(t *testing.T) {
	unset(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "jaeger")
	_, err := otelenv.TracerProvider(t.Context(), "x")
	require.ErrorContains(t, err, `OTEL_TRACES_EXPORTER "jaeger": want otlp or none`)
	unset(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err = otelenv.TracerProvider(t.Context(), "x")
	require.ErrorContains(t, err, `OTEL_EXPORTER_OTLP_PROTOCOL "http/json": want http/protobuf or grpc`)
}

// A span reaches a collector (a local OTLP/HTTP receiver) with the
// endpoint and service name from the environment only.
func TestSpansReachCollector(t *testing.T) {
	unset(t)
	rcv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	tp, err := otelenv.TracerProvider(t.Context(), "default-name")
	require.NoError(t, err)
	require.NotNil(t, tp)
	_, span := tp.Tracer("test").Start(context.Background(), "hello")
	span.End()
	require.NoError(t, tp.Shutdown(t.Context())) // flushes
	spans := rcv.Spans()
	require.Len(t, spans, 1)
	assert.Equal(t, "hello", spans[0].Name)
	assert.Equal(t, "from-env", spans[0].Service)
	assert.Equal(t, span.SpanContext().TraceID().String(), spans[0].TraceID)
}
