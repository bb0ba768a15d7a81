/**
 * JSON.rawJSON (ES2025 JSON.parse source text access), which Node 24 provides and the project's
 * TypeScript lib (es2024) does not declare. JSON.stringify writes its text verbatim.
 */
declare global {
  interface JSON {
    rawJSON(text: string): unknown;
  }
}

export {};
