/**
 * `GET /metrics`: the Effect `Metric`s of the process (rallycache's and
 * this server's), read through `@effect/opentelemetry` and written in the
 * Prometheus text format by OpenTelemetry's own serializer. Effect's
 * runtime metrics (`effect_fiber_*`) are left out unless asked for.
 *
 * @since 0.1.0
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Context, Effect, Layer } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface PrometheusShape {
  /** The current values, in the Prometheus text exposition format. */
  readonly scrape: Effect.Effect<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly serviceName?: string | undefined
  /** Also list Effect's runtime metrics (`effect_*`). Default false. */
  readonly runtimeMetrics?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Prometheus extends Context.Tag("http-server/Prometheus")<Prometheus, PrometheusShape>() {
  /**
   * The exporter is a pull `MetricReader` whose own HTTP server is never
   * started: this server answers `/metrics` itself.
   */
  static readonly layer = (options: Options = {}): Layer.Layer<Prometheus> =>
    Layer.unwrapEffect(Effect.sync(() => {
      const exporter = new PrometheusExporter({ preventServerStart: true })
      const serializer = new PrometheusSerializer()
      const keep = (name: string) => options.runtimeMetrics === true || !name.startsWith("effect_")
      const scrape = Effect.promise(() => exporter.collect()).pipe(
        Effect.tap(({ errors }) =>
          errors.length === 0 ? Effect.void : Effect.logWarning("metric collection errors", errors)
        ),
        Effect.map(({ resourceMetrics }) =>
          serializer.serialize({
            ...resourceMetrics,
            scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
              ...scope,
              metrics: scope.metrics.filter((metric) => keep(metric.descriptor.name))
            }))
          })
        )
      )
      return Layer.merge(
        Layer.succeed(Prometheus, { scrape }),
        OtelMetrics.layer(() => exporter).pipe(
          Layer.provide(Resource.layer({ serviceName: options.serviceName ?? "rallycache-http" }))
        )
      )
    }))
}
