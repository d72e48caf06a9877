/**
 * Spans of a cluster node, exported through `@effect/opentelemetry`.
 *
 * The front records `rallycache.front.<Message>` around each message it
 * sends, the runner `rallycache.runner.<Message>` around each it handles
 * (attributes: video id, rally index, runner). `@effect/cluster` carries the
 * trace and span ids in each envelope, so a runner's span is a child of the
 * front's, and the engine's spans inside the handler join the same trace.
 *
 * - `layer`: any OpenTelemetry `SpanProcessor` (an in-memory exporter in
 *   tests, a batch processor over any exporter in production);
 * - `layerOtlp`: OTLP over HTTP to a collector (`http://host:4318/v1/traces`).
 *
 * @since 0.1.0
 */
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as Resource from "@effect/opentelemetry/Resource"
import * as Tracer from "@effect/opentelemetry/Tracer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { BasicTracerProvider, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"

/**
 * Spans go to the given processors; they are flushed when the layer closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly serviceName: string
  readonly spanProcessors: ReadonlyArray<SpanProcessor>
}): Layer.Layer<never> => {
  const provider = Layer.scoped(
    Tracer.OtelTracerProvider,
    Effect.flatMap(Resource.Resource, (resource) =>
      Effect.acquireRelease(
        Effect.sync(() => new BasicTracerProvider({ resource, spanProcessors: [...options.spanProcessors] })),
        (provider) => Effect.promise(() => provider.shutdown())
      ))
  )
  return Layer.discard(Tracer.layer).pipe(
    Layer.provide(provider),
    Layer.provide(Resource.layer({ serviceName: options.serviceName }))
  )
}

/**
 * Spans go to an OTLP/HTTP collector at `url`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOtlp = (options: { readonly serviceName: string; readonly url: string }): Layer.Layer<never> =>
  OtlpTracer.layer({ url: options.url, resource: { serviceName: options.serviceName } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provide(OtlpSerialization.layerJson)
  )
