/**
 * Action outputs are parsed and re-serialized by the executor and by whoever reads the response,
 * with recursive serializers: they are held to MAX_OUTPUT_DEPTH levels, well inside the limits
 * of common JSON libraries.
 */
export { jsonNestsDeeperThan } from '../util/index.ts';

export const MAX_OUTPUT_DEPTH = 256;
