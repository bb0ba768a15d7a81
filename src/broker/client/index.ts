/** Executor-side KBS client: attest, fetch and decrypt resources, expose them as a SecretSource. */
export {
  attestAndFetch,
  openBrokerSession,
  type AttestedBrokerSession,
  backoffDelay,
  type AttestAndFetchOptions,
  type AttestationRound,
  type BrokerSession,
  type EvidenceProvider,
  type RetryOptions,
  type SecretSource,
} from './client.ts';
export { BrokerCallError, brokerCaDispatcher, callBroker } from './http.ts';
