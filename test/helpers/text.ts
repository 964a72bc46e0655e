/**
 * `text` as a literal inside a RegExp, e.g. a file path or a message with dots and brackets.
 *
 * @example new RegExp(`^sluice: ${escapeRegExp(problem)}$`, 'm')
 */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
