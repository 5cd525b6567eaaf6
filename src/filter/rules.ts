// Include/exclude rules with rsync's matching semantics. Pure: no I/O.
//
// What rsync does (exclude.c rule_matches(), lib/wildmatch.c), and so what this does:
//  - A trailing '/' is removed from the pattern and makes the rule match directories only.
//  - A pattern with no '/' and no '**' is matched against the last path component (the name).
//  - Otherwise against the path relative to the transfer root: from the root if the pattern starts
//    with '/'; else, if it has no '**', against the last (number of its slashes + 1) components
//    ('a/b' matches 'a/b' and 'x/a/b', not 'xa/b'); else, with a '**' that does not start the
//    pattern, starting at the root or just after any '/'; a pattern starting with '**' is matched
//    against '/' + path, so '**/x' matches a top-level 'x' too.
//  - A pattern ending in '***' also matches a directory as if its path ended in '/', so 'd/***'
//    matches d itself and everything in it.
//  - '*' is any run of bytes but '/', two or more '*' any run of bytes, '?' one byte but '/',
//    '[...]' one byte of a class ('!' or '^' negates, ranges, '\' escapes, POSIX [:alpha:] etc.
//    in ASCII, never '/'), '\x' the byte x. A pattern without any of '*', '?', '[' is literal,
//    backslashes included (rsync only interprets '\' in wildcard patterns).
//  - A pattern that can never match in rsync (an unterminated '[', an unknown [:class:], a
//    trailing '\') never matches here either.
// Matching is on bytes: paths and patterns are compared as latin1 strings (one char per byte),
// and a pattern given as text is first encoded as UTF-8.
//
// Why not a RegExp: a glob translates to one easily ('*' -> '[^/]*', '**' -> '.*'), but V8's
// backtracking makes '*a*a*a*a*a*a*b' against a 250-byte name run for minutes, and a user's
// pattern must not hang a scan. The matcher below is wildmatch's dowild(), whose ABORT_ALL /
// ABORT_TO_STARSTAR pruning keeps such patterns fast, and which makes every match exactly
// rsync's. A pattern is tokenized once; a class becomes a 256-entry table of the bytes it matches.

export type FilterAction = 'include' | 'exclude';

export interface FilterRule {
  action: FilterAction;
  /** The pattern, as text: matched as its UTF-8 bytes. */
  pattern: string;
  /**
   * The pattern's exact bytes, which then win over `pattern` (left for display). parseRuleLines
   * sets it for a line that is not valid UTF-8, which a string cannot carry.
   */
  patternBytes?: Buffer;
}

export interface CompiledRule {
  readonly include: boolean;
  /** Whether the rule matches a path: latin1 of its bytes (one char per byte), non-empty, relative to the root. */
  matches(path: string, isDir: boolean): boolean;
}

/** The pattern's bytes as a latin1 string: what compileRule matches against paths. */
export function patternLatin1(rule: FilterRule): string {
  return (rule.patternBytes ?? Buffer.from(rule.pattern, 'utf8')).toString('latin1');
}

/** Compiles one rule; throws TypeError for a malformed rule (an unknown action, an empty pattern). */
export function compileRule(rule: FilterRule): CompiledRule {
  if (rule === null || typeof rule !== 'object') throw new TypeError(`filter rule: not an object: ${String(rule)}`);
  if (rule.action !== 'include' && rule.action !== 'exclude') {
    throw new TypeError(`filter rule: action must be 'include' or 'exclude', got ${String(rule.action)}`);
  }
  if (rule.patternBytes !== undefined && !Buffer.isBuffer(rule.patternBytes)) {
    throw new TypeError('filter rule: patternBytes must be a Buffer');
  }
  if (rule.patternBytes === undefined && typeof rule.pattern !== 'string') {
    throw new TypeError('filter rule: pattern must be a string');
  }
  const pattern = patternLatin1(rule);
  if (pattern === '') throw new TypeError(`filter rule: empty ${rule.action} pattern`);
  return { include: rule.action === 'include', matches: compilePattern(pattern) };
}

/** rsync's rule_matches() for one pattern (a latin1 string), as a predicate on (path, isDir). */
function compilePattern(raw: string): (path: string, isDir: boolean) => boolean {
  let pat = raw;
  let dirOnly = false;
  if (pat.length > 1 && pat.endsWith('/')) {
    pat = pat.slice(0, -1);
    dirOnly = true;
  }
  let slashes = 0;
  for (const c of pat) if (c === '/') slashes++;
  const wild = /[*?[]/.test(pat);
  const star2 = wild ? pat.indexOf('**') : -1;
  const wild2 = star2 >= 0;
  const wild2Prefix = star2 === 0;
  const wild3Suffix = wild2 && pat.endsWith('***');
  const anchored = pat.startsWith('/');
  const body = anchored ? pat.slice(1) : pat;
  const nameOnly = slashes === 0 && !wild2;

  /** The text rsync matches the pattern against: the name, or the path, plus the '/' the flags add. */
  const subject = (path: string, isDir: boolean): string => {
    let text = nameOnly ? path.slice(path.lastIndexOf('/') + 1) : wild2Prefix ? '/' + path : path;
    if (isDir && wild3Suffix) text += '/';
    return text;
  };

  if (!wild) {
    // A literal pattern (the flags that add a '/' need a wildcard, so the subject is the name or path).
    return (path, isDir) => {
      if (dirOnly && !isDir) return false;
      const text = subject(path, isDir);
      if (anchored) return text === body;
      // The pattern equals the end of the subject, on a component boundary.
      return (
        text.endsWith(body) && (text.length === body.length || text.charCodeAt(text.length - body.length - 1) === SLASH)
      );
    };
  }

  const tokens = compileGlob(body);
  if (tokens === null) return () => false;
  // > 0: the last `where` components; < 0: from the start or after any '/'; 0: from the start.
  const where = !anchored && slashes > 0 && !wild2 ? slashes + 1 : !anchored && wild2 && !wild2Prefix ? -1 : 0;
  return (path, isDir) => !(dirOnly && !isDir) && wildmatchArray(tokens, subject(path, isDir), where);
}

/** wildmatch_array(): `where` > 0 matches the last `where` components, < 0 from the start or after any '/'. */
function wildmatchArray(tokens: Token[], subject: string, where: number): boolean {
  const text = where > 0 ? trailingComponents(subject, where) : subject;
  if (text === undefined) return false;
  let matched = dowild(tokens, 0, text, 0);
  if (matched !== TRUE && where < 0 && matched !== ABORT_ALL) {
    for (let i = 0; ;) {
      if (i >= text.length) return false;
      if (text.charCodeAt(i++) === SLASH && (matched = dowild(tokens, 0, text, i)) !== FALSE) {
        if (matched !== ABORT_TO_STARSTAR) break;
      }
    }
  }
  return matched === TRUE;
}

/** The last `count` '/'-separated components of `text`, or undefined if it has fewer. */
function trailingComponents(text: string, count: number): string | undefined {
  let i = text.length;
  for (let left = count; ; left--) {
    const slash = i > 0 ? text.lastIndexOf('/', i - 1) : -1;
    if (left === 1) return text.slice(slash + 1);
    if (slash < 0) return undefined;
    i = slash;
  }
}

const SLASH = 0x2f;
const TRUE = 1;
const FALSE = 0;
/** The text ran out: no later start can match either. */
const ABORT_ALL = -1;
/** A '*' met a '/': only an enclosing '**' can go on. */
const ABORT_TO_STARSTAR = -2;

/** A byte, a class ('?' is the class of every byte but '/'), or a run of '*' (double: two or more). */
export type Token =
  { kind: 'byte'; code: number } | { kind: 'class'; bytes: Uint8Array } | { kind: 'star'; double: boolean };

const ANY_BUT_SLASH = new Uint8Array(256).fill(1);
ANY_BUT_SLASH[SLASH] = 0;

/**
 * An rsync wildcard pattern (a latin1 string, without the leading '/' of an anchored rule) as
 * tokens, or null for a pattern that can never match: a trailing '\' (wildmatch compares the text
 * with the NUL), an unterminated class, an unknown [:class:] (dowild gives up on reaching them,
 * and every match reaches every token).
 */
export function compileGlob(glob: string): Token[] | null {
  const tokens: Token[] = [];
  let i = 0;
  while (i < glob.length) {
    const c = glob.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      if (i + 1 >= glob.length) return null;
      tokens.push({ kind: 'byte', code: glob.charCodeAt(i + 1) });
      i += 2;
    } else if (c === 0x3f /* ? */) {
      tokens.push({ kind: 'class', bytes: ANY_BUT_SLASH });
      i++;
    } else if (c === 0x2a /* * */) {
      let j = i + 1;
      while (glob.charCodeAt(j) === 0x2a) j++;
      tokens.push({ kind: 'star', double: j - i > 1 });
      i = j;
    } else if (c === 0x5b /* [ */) {
      const cls = parseClass(glob, i);
      if (cls === null) return null;
      tokens.push({ kind: 'class', bytes: cls.bytes });
      i = cls.end;
    } else {
      tokens.push({ kind: 'byte', code: c });
      i++;
    }
  }
  return tokens;
}

/** Whether a whole latin1 string matches an rsync wildcard pattern (a latin1 string): wildmatch(). */
export function wildmatch(glob: string, text: string): boolean {
  const tokens = compileGlob(glob);
  return tokens !== null && dowild(tokens, 0, text, 0) === TRUE;
}

/** wildmatch's dowild(): tokens[t...] against text[i...]; TRUE, FALSE, ABORT_ALL or ABORT_TO_STARSTAR. */
function dowild(tokens: Token[], t: number, text: string, i: number): number {
  for (; t < tokens.length; t++, i++) {
    const token = tokens[t]!;
    if (token.kind === 'star') {
      // A trailing '**' matches everything, a trailing '*' what has no '/' left.
      if (t + 1 === tokens.length) return token.double || text.indexOf('/', i) < 0 ? TRUE : FALSE;
      for (; i < text.length; i++) {
        const matched = dowild(tokens, t + 1, text, i);
        if (matched !== FALSE) {
          if (!token.double || matched !== ABORT_TO_STARSTAR) return matched;
        } else if (!token.double && text.charCodeAt(i) === SLASH) {
          return ABORT_TO_STARSTAR;
        }
      }
      return ABORT_ALL;
    }
    if (i >= text.length) return ABORT_ALL;
    const c = text.charCodeAt(i);
    if (token.kind === 'byte' ? c !== token.code : token.bytes[c] !== 1) return FALSE;
  }
  return i >= text.length ? TRUE : FALSE;
}

const ASCII_CLASSES = new Map<string, (c: number) => boolean>(
  Object.entries({
    alnum: (c: number) => isDigit(c) || isUpper(c) || isLower(c),
    alpha: (c: number) => isUpper(c) || isLower(c),
    blank: (c: number) => c === 0x20 || c === 0x09,
    cntrl: (c: number) => c < 0x20 || c === 0x7f,
    digit: isDigit,
    graph: (c: number) => c > 0x20 && c < 0x7f,
    lower: isLower,
    print: (c: number) => c >= 0x20 && c < 0x7f,
    punct: (c: number) => c > 0x20 && c < 0x7f && !isDigit(c) && !isUpper(c) && !isLower(c),
    space: (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d),
    upper: isUpper,
    xdigit: (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66),
  }),
);

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}
function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}

/**
 * The character class starting at glob[start] === '[', parsed exactly as wildmatch's dowild()
 * does, as a table of the bytes it matches (never '/'): a ']' first is a member, '-' makes a
 * range only between two members, '\' escapes, '[:name:]' is a POSIX class (ASCII). Null if it
 * can never match (no closing ']', an unknown class name).
 */
function parseClass(glob: string, start: number): { bytes: Uint8Array; end: number } | null {
  const at = (k: number): number => (k < glob.length ? glob.charCodeAt(k) : 0);
  const members = new Uint8Array(256);
  let p = start + 1;
  let ch = at(p);
  const negate = ch === 0x21 /* ! */ || ch === 0x5e; /* ^ */
  if (negate) ch = at(++p);
  let prev = 0;
  do {
    if (ch === 0) return null;
    if (ch === 0x5c /* \ */) {
      ch = at(++p);
      if (ch === 0) return null;
      members[ch] = 1;
    } else if (ch === 0x2d /* - */ && prev !== 0 && at(p + 1) !== 0 && at(p + 1) !== 0x5d /* ] */) {
      ch = at(++p);
      if (ch === 0x5c) {
        ch = at(++p);
        if (ch === 0) return null;
      }
      for (let b = prev; b <= ch; b++) members[b] = 1;
      ch = 0; // no range may start at a range's end
    } else if (ch === 0x5b /* [ */ && at(p + 1) === 0x3a /* : */) {
      const s = p + 2;
      let q = s;
      while (at(q) !== 0 && at(q) !== 0x5d) q++;
      if (at(q) === 0) return null;
      if (q - s - 1 < 0 || at(q - 1) !== 0x3a) {
        // No ':]': the '[' is an ordinary member and parsing goes on after it.
        members[0x5b] = 1;
      } else {
        const test = ASCII_CLASSES.get(glob.slice(s, q - 1));
        if (!test) return null;
        for (let b = 0; b < 256; b++) if (test(b)) members[b] = 1;
        p = q;
        ch = 0;
      }
    } else {
      members[ch] = 1;
    }
    prev = ch;
    ch = at(++p);
  } while (ch !== 0x5d);

  const bytes = new Uint8Array(256);
  for (let b = 0; b < 256; b++) bytes[b] = b !== SLASH && (members[b] === 1) !== negate ? 1 : 0;
  return { bytes, end: p + 1 };
}

/**
 * Rules from the text of an --exclude-from / --include-from file, as rsync reads one: a rule per
 * line (a line ends at '\n' or '\r'), empty and whitespace-only lines and lines starting with '#'
 * or ';' skipped, a line starting with '+ ' or '- ' is an include or exclude whatever `action`
 * says. Everything else on the line is the pattern, leading and trailing spaces included. A
 * Buffer is taken as bytes: a line that is not valid UTF-8 gets `patternBytes`.
 * Throws TypeError (with the line number) for a '+ ' or '- ' with no pattern, and for rsync's '!'
 * (clear the rule list), which is not supported.
 */
export function parseRuleLines(text: string | Buffer, action: FilterAction = 'exclude'): FilterRule[] {
  if (action !== 'include' && action !== 'exclude') {
    throw new TypeError(`parseRuleLines: action must be 'include' or 'exclude', got ${String(action)}`);
  }
  const lines = (typeof text === 'string' ? Buffer.from(text, 'utf8') : text).toString('latin1').split(/[\r\n]/);
  const rules: FilterRule[] = [];
  lines.forEach((line, i) => {
    if (/^[ \t\v\f]*$/.test(line) || line.startsWith('#') || line.startsWith(';')) return;
    if (line === '!') throw new TypeError(`line ${i + 1}: '!' (clear the rule list) is not supported`);
    let lineAction = action;
    let pattern = line;
    if (line.startsWith('+ ') || line.startsWith('- ')) {
      lineAction = line.startsWith('+') ? 'include' : 'exclude';
      pattern = line.slice(2);
      if (pattern === '') throw new TypeError(`line ${i + 1}: '${line}' has no pattern`);
    }
    const bytes = Buffer.from(pattern, 'latin1');
    const utf8 = bytes.toString('utf8');
    rules.push(
      Buffer.from(utf8, 'utf8').equals(bytes)
        ? { action: lineAction, pattern: utf8 }
        : { action: lineAction, pattern: utf8, patternBytes: bytes },
    );
  });
  return rules;
}

const UNIT_POWERS: Record<string, number> = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5 };

/**
 * A size as rsync's --max-size/--min-size take it, in bytes: a number (fraction allowed) and an
 * optional unit, any case: none or 'b' bytes; 'k', 'm', 'g', 't', 'p' and their 'KiB' forms
 * powers of 1024; 'KB', 'MB', ... powers of 1000; then optionally '+1' or '-1' (a byte more or
 * less). Fractions of a byte are dropped. Throws TypeError naming the string if it is none of that.
 */
export function parseSize(s: string): number {
  const m = typeof s === 'string' ? /^(\d+(?:\.\d*)?|\.\d+)(?:([bkmgtp])(b|ib)?)?([+-]1)?$/i.exec(s) : null;
  if (m) {
    const power = UNIT_POWERS[(m[2] ?? 'b').toLowerCase()] ?? 0;
    const base = m[3]?.toLowerCase() === 'b' ? 1000 : 1024;
    let bytes = Math.trunc(base ** power * Number(m[1]));
    if (m[4]) bytes += m[4] === '+1' ? 1 : -1;
    if (Number.isSafeInteger(bytes) && bytes >= 0) return bytes;
  }
  throw new TypeError(`invalid size: ${JSON.stringify(s)}`);
}
