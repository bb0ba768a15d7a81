export { openSecretStore, writeFileAtomic, MAX_SECRET_BYTES, type SecretStore } from './secret-store.ts';
export { parseOperatorKey, loadOperatorKey, OPERATOR_KEY_BYTES } from './operator-key.ts';
