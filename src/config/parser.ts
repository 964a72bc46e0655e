/**
 * Parser: tokens -> a tree of directives, as ngx_conf_parse() reads them. It knows nothing about
 * which directives exist (that is the job of the directive tables); it only checks the shape.
 * Syntax errors use nginx's wording; parsing of a file stops at its first syntax error, as in
 * nginx, but whatever was read before it is kept (so includes seen so far are still checked).
 */
import { tokenize } from './lexer.js';
import type { Problems } from './problems.js';

/** One directive as written: `name args... ;` or `name args... { block }`. */
export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  /** The directives inside `{ }`, or null when the directive ended with `;`. */
  readonly block: readonly Directive[] | null;
  readonly file: string;
  /** The line of the `;` or `{` that ends the directive: nginx reports problems there. */
  readonly line: number;
  /** For a block, the line of its closing `}` (nginx reports end-of-block problems there). */
  readonly endLine: number;
}

interface MutableDirective {
  name: string;
  args: string[];
  block: MutableDirective[] | null;
  file: string;
  line: number;
  endLine: number;
}

class StopParsing extends Error {}

/**
 * How many blocks may be open inside one another, across included files (`http`, `server` and
 * each nested `location` count one each). nginx has no limit of its own but needs its C stack
 * for each level: 5,000 nested locations pass `nginx -t`, 20,000 crash it. Every stage of Sluice
 * walks the tree without recursion, so this only bounds the work: a file is not read past it, and
 * the include expansion checks the depth across files. @default 10000
 */
export const MAX_BLOCK_DEPTH = 10_000;

/** Reports the block that opens one level too many. */
export function tooManyBlocks(problems: Problems, file: string, line: number): void {
  problems.add(`too many nested blocks (more than ${MAX_BLOCK_DEPTH})`, { file, line },
    `Sluice reads at most ${MAX_BLOCK_DEPTH} blocks inside one another; nest fewer locations `
    + '(a location nested in another only narrows what its parent matches, so it can often be its sibling)');
}

export interface ParseOptions {
  /**
   * True for `-g` text: nginx words the end-of-input error differently there
   * (`unexpected end of parameter, expecting ";"`).
   */
  readonly commandLine?: boolean;
}

/** Parses one file's text. Problems are added to `problems`; the tree read so far is returned. */
export function parseConfigText(
  text: string,
  file: string,
  problems: Problems,
  options: ParseOptions = {},
): Directive[] {
  const tokens = tokenize(text);
  let pos = 0;
  const fail = (message: string, line: number, hint?: string): never => {
    problems.add(message, { file, line }, hint);
    throw new StopParsing();
  };

  // An explicit stack of open blocks rather than recursion: nginx accepts thousands of nested
  // locations (5,000 pass `nginx -t`), and a recursive descent would overflow the JavaScript stack.
  const root: MutableDirective[] = [];
  const open: MutableDirective[] = [];
  let into = root;
  let words: string[] = [];
  try {
    for (;;) {
      const tok = tokens[pos++]!;
      switch (tok.kind) {
        case 'word':
          words.push(tok.value);
          break;
        case ';':
          if (words.length === 0) fail('unexpected ";"', tok.line);
          into.push({ name: words[0]!, args: words.slice(1), block: null, file, line: tok.line, endLine: tok.line });
          words = [];
          break;
        case '{': {
          if (words.length === 0) fail('unexpected "{"', tok.line);
          if (open.length === MAX_BLOCK_DEPTH) {
            tooManyBlocks(problems, file, tok.line);
            throw new StopParsing();
          }
          const node: MutableDirective = {
            name: words[0]!, args: words.slice(1), block: [], file, line: tok.line, endLine: tok.line,
          };
          into.push(node);
          words = [];
          open.push(node);
          into = node.block!;
          break;
        }
        case '}': {
          if (words.length !== 0) fail('unexpected "}"', tok.line, `"${words[0]!}" before it is missing its ";"`);
          const closed = open.pop();
          if (closed === undefined) fail('unexpected "}"', tok.line, 'no block is open here; remove it, or look for a missing "{" above');
          closed!.endLine = tok.line;
          into = open.length === 0 ? root : open[open.length - 1]!.block!;
          break;
        }
        case 'eof':
          if (words.length !== 0 || tok.incomplete) {
            fail(options.commandLine === true
              ? 'unexpected end of parameter, expecting ";"'
              : 'unexpected end of file, expecting ";" or "}"', tok.line,
            'the last directive is missing its ";" (or a quote is not closed)');
          }
          if (open.length > 0) fail('unexpected end of file, expecting "}"', tok.line, 'a block is not closed; add the missing "}"');
          return root;
        case 'error':
          fail(tok.message, tok.line);
      }
    }
  } catch (err) {
    if (!(err instanceof StopParsing)) throw err;
  }
  return root;
}
