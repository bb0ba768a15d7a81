/** Prometheus metrics of one executor (a registry per instance, so tests can run several). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ExecutorMetrics {
  readonly registry: Registry;
  readonly actions: Counter<'action' | 'outcome'>;
  readonly actionSeconds: Histogram<'action'>;
  readonly requestSeconds: Histogram<'route' | 'status'>;
  readonly ledgerSize: Gauge;
  readonly poolBusy: Gauge;
  readonly queueDepth: Gauge;
  readonly rejected: Counter<'reason'>;
}

export function createMetrics(): ExecutorMetrics {
  const registry = new Registry();
  const buckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  return {
    registry,
    actions: new Counter({ name: 'attex_actions_total', help: 'Actions run, by action and outcome', labelNames: ['action', 'outcome'], registers: [registry] }),
    actionSeconds: new Histogram({ name: 'attex_action_duration_seconds', help: 'Time inside the sandbox per action', labelNames: ['action'], buckets, registers: [registry] }),
    requestSeconds: new Histogram({ name: 'attex_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['route', 'status'], buckets, registers: [registry] }),
    ledgerSize: new Gauge({ name: 'attex_ledger_entries', help: 'Entries in the transparency log', registers: [registry] }),
    poolBusy: new Gauge({ name: 'attex_pool_running', help: 'Actions running in the sandbox pool', registers: [registry] }),
    queueDepth: new Gauge({ name: 'attex_pool_queued', help: 'Actions admitted and waiting for a sandbox worker', registers: [registry] }),
    rejected: new Counter({ name: 'attex_requests_rejected_total', help: 'Requests refused before running, by reason code', labelNames: ['reason'], registers: [registry] }),
  };
}
