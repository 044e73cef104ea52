// compat.js — one namespace for Chromium (`chrome`, promise-returning in MV3)
// and Firefox (`browser`).  Nothing else differs in what this extension uses.
export const api = globalThis.browser ?? globalThis.chrome;
