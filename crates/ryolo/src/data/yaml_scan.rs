//! A cheap pre-scan of YAML text that follows the tokenizer rules of libyaml (which `serde_yaml`
//! uses) just far enough to measure nesting and count aliases before the real parser runs: deep
//! flow nesting (`[[[[...`) makes that parser quadratic, and aliases can repeat large parts of a
//! file. Quotes, comments, plain and block scalars are skipped as libyaml skips them, so brackets
//! inside them do not count and cannot hide real ones.

/// What the pre-scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Deepest `[`/`{` nesting and its 1-based line.
    pub flow: (usize, usize),
    /// Deepest block nesting (indentation levels) and its 1-based line.
    pub block: (usize, usize),
    /// Alias tokens (`*name`).
    pub aliases: usize,
}

/// The scanner state: position, flow level and the block indentation stack, as libyaml keeps them.
struct Lexer<'a> {
    /// The text.
    s: &'a [u8],
    /// Byte position.
    i: usize,
    /// Column in characters.
    col: usize,
    /// 0-based line.
    line: usize,
    /// Open `[`/`{` collections.
    flow: usize,
    /// Block indentation columns (libyaml's `indents` plus its current `indent`).
    indents: Vec<usize>,
    /// Whether a simple key may start at the next token (libyaml's `simple_key_allowed`).
    key_allowed: bool,
    /// Where the current simple key started: (line, column).
    key_at: Option<(usize, usize)>,
    /// The result so far.
    shape: Shape,
    /// Stop once either depth exceeds this.
    stop_at: usize,
}

/// Whether `b` is a space or a tab.
fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The byte length of the character whose first byte is `b` (1 for invalid bytes).
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

impl<'a> Lexer<'a> {
    /// The byte `k` ahead, 0 past the end.
    fn peek(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    /// Whether the text is consumed.
    fn end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// The length of the line break `k` bytes ahead (CR LF, CR, LF, NEL, LS, PS), else 0.
    fn break_len(&self, k: usize) -> usize {
        match (self.peek(k), self.peek(k + 1), self.peek(k + 2)) {
            (b'\r', b'\n', _) => 2,
            (b'\r' | b'\n', _, _) => 1,
            (0xC2, 0x85, _) => 2,
            (0xE2, 0x80, 0xA8 | 0xA9) => 3,
            _ => 0,
        }
    }

    /// Whether a blank, a line break or the end is `k` bytes ahead.
    fn blankz(&self, k: usize) -> bool {
        self.i + k >= self.s.len() || blank(self.peek(k)) || self.break_len(k) > 0
    }

    /// Moves past one character or line break.
    fn advance(&mut self) {
        if self.end() {
            return;
        }
        match self.break_len(0) {
            0 => {
                self.i += char_len(self.peek(0));
                self.col += 1;
            }
            n => {
                self.i += n;
                self.line += 1;
                self.col = 0;
            }
        }
    }

    /// Moves to the next line break (or the end) without consuming it.
    fn skip_line_rest(&mut self) {
        while !self.end() && self.break_len(0) == 0 {
            self.advance();
        }
    }

    /// libyaml's indentation column (-1 at the top).
    fn indent(&self) -> isize {
        self.indents.last().map_or(-1, |&c| c as isize)
    }

    /// Opens a block collection at `col` when deeper than the current one (libyaml's roll_indent).
    fn roll(&mut self, col: usize) {
        if self.flow == 0 && self.indent() < col as isize {
            self.indents.push(col);
            if self.indents.len() > self.shape.block.0 {
                self.shape.block = (self.indents.len(), self.line + 1);
            }
        }
    }

    /// Closes the block collections deeper than the current column (libyaml's unroll_indent).
    fn unroll(&mut self) {
        if self.flow == 0 {
            while self.indent() > self.col as isize {
                self.indents.pop();
            }
        }
    }

    /// Whether a document marker (`---` or `...` then a blank) starts here at column 0.
    fn doc_marker(&self) -> bool {
        self.col == 0
            && (self.s[self.i..].starts_with(b"---") || self.s[self.i..].starts_with(b"..."))
            && self.blankz(3)
    }

    /// Skips blanks, comments and line breaks up to the next token.
    fn skip_to_token(&mut self) {
        loop {
            if self.col == 0 && self.s[self.i..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.i += 3;
            }
            while blank(self.peek(0)) && !self.end() {
                self.advance();
            }
            if self.peek(0) == b'#' {
                self.skip_line_rest();
            }
            if self.end() || self.break_len(0) == 0 {
                return;
            }
            self.advance();
            if self.flow == 0 {
                self.key_allowed = true;
            }
        }
    }

    /// Records a token that may start a simple key (scalars, anchors, tags, aliases, `[`, `{`).
    fn key_token(&mut self) {
        if self.key_allowed {
            self.key_at = Some((self.line, self.col));
        }
        self.key_allowed = false;
    }

    /// A `:` value indicator: a block mapping opens at its key's column.
    fn value(&mut self) {
        let col = match self.key_at.take() {
            Some((line, col)) if line == self.line => col,
            _ => self.col,
        };
        self.roll(col);
        self.key_allowed = self.flow == 0;
        self.advance();
    }

    /// Skips an anchor or alias name.
    fn name(&mut self) {
        self.advance();
        while self.peek(0).is_ascii_alphanumeric() || matches!(self.peek(0), b'-' | b'_') {
            self.advance();
        }
    }

    /// Skips a tag (`!<uri>`, `!!name`, `!handle!name`).
    fn tag(&mut self) {
        self.advance();
        if self.peek(0) == b'<' {
            while !self.end() && self.peek(0) != b'>' && self.break_len(0) == 0 {
                self.advance();
            }
            self.advance();
            return;
        }
        while self.peek(0).is_ascii_alphanumeric() || b"-_;/?:@&=+$.%!~*'()".contains(&self.peek(0))
        {
            self.advance();
        }
    }

    /// Skips a single- or double-quoted scalar (it may span lines).
    fn quoted(&mut self, q: u8) {
        self.advance();
        while !self.end() && !self.doc_marker() {
            match self.peek(0) {
                b'\'' if q == b'\'' && self.peek(1) == b'\'' => {
                    self.advance();
                    self.advance();
                }
                b'\\' if q == b'"' => {
                    self.advance();
                    self.advance();
                }
                c if c == q => {
                    self.advance();
                    return;
                }
                _ => self.advance(),
            }
        }
    }

    /// Skips a plain scalar: it ends at `: `, ` #`, a flow indicator inside a flow collection, a
    /// document marker, or a line less indented than the block it belongs to.
    fn plain(&mut self) {
        let indent = self.indent() + 1;
        loop {
            if self.doc_marker() || self.peek(0) == b'#' {
                return;
            }
            while !self.blankz(0) {
                let c = self.peek(0);
                let next = self.peek(1);
                if c == b':' && (self.blankz(1) || (self.flow > 0 && b",?[]{}".contains(&next))) {
                    return;
                }
                if self.flow > 0 && b",[]{}".contains(&c) {
                    return;
                }
                self.advance();
            }
            if self.end() {
                return;
            }
            while !self.end() && (blank(self.peek(0)) || self.break_len(0) > 0) {
                if self.break_len(0) > 0 && self.flow == 0 {
                    self.key_allowed = true;
                }
                self.advance();
            }
            if self.flow == 0 && (self.col as isize) < indent {
                return;
            }
        }
    }

    /// Skips the empty lines of a block scalar and settles its indentation (libyaml's
    /// scan_block_scalar_breaks); 0 means "not known yet".
    fn block_breaks(&mut self, indent: &mut usize) {
        let mut max = 0;
        loop {
            while (*indent == 0 || self.col < *indent) && self.peek(0) == b' ' {
                self.advance();
            }
            max = max.max(self.col);
            if self.break_len(0) == 0 {
                break;
            }
            self.advance();
        }
        if *indent == 0 {
            *indent = max.max((self.indent() + 1).max(1) as usize);
        }
    }

    /// Skips a literal (`|`) or folded (`>`) block scalar: its header, then every line indented at
    /// least as far as its content.
    fn block_scalar(&mut self) {
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.peek(0) {
                b'+' | b'-' => self.advance(),
                d @ b'1'..=b'9' => {
                    increment = (d - b'0') as usize;
                    self.advance();
                }
                _ => break,
            }
        }
        while blank(self.peek(0)) {
            self.advance();
        }
        if self.peek(0) == b'#' {
            self.skip_line_rest();
        }
        if self.break_len(0) == 0 {
            return;
        }
        self.advance();
        let mut indent = match (increment, self.indent()) {
            (0, _) => 0,
            (k, top) if top >= 0 => top as usize + k,
            (k, _) => k,
        };
        self.block_breaks(&mut indent);
        while self.col == indent && !self.end() {
            self.skip_line_rest();
            if self.end() {
                break;
            }
            self.advance();
            self.block_breaks(&mut indent);
        }
        self.key_allowed = true;
    }

    /// Whether a plain scalar may start here (libyaml's rule for the first character).
    fn plain_start(&self) -> bool {
        let c = self.peek(0);
        let indicator = self.blankz(0) || b"-?:,[]{}#&*!|>'\"%@`".contains(&c);
        !indicator
            || (c == b'-' && !blank(self.peek(1)))
            || (self.flow == 0 && (c == b'?' || c == b':') && !self.blankz(1))
    }

    /// Reads one token (or skips one character libyaml would reject).
    fn token(&mut self) {
        self.unroll();
        let c = self.peek(0);
        match c {
            b'%' if self.col == 0 => self.skip_line_rest(),
            _ if self.doc_marker() => (0..3).for_each(|_| self.advance()),
            b'[' | b'{' => {
                self.key_token();
                self.flow += 1;
                if self.flow > self.shape.flow.0 {
                    self.shape.flow = (self.flow, self.line + 1);
                }
                self.key_allowed = true;
                self.advance();
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.key_allowed = false;
                self.advance();
            }
            b',' => {
                self.key_allowed = true;
                self.advance();
            }
            b'-' if self.blankz(1) => {
                self.roll(self.col);
                self.key_allowed = true;
                self.advance();
            }
            b'?' if self.flow > 0 || self.blankz(1) => {
                self.roll(self.col);
                self.key_allowed = self.flow == 0;
                self.advance();
            }
            b':' if self.flow > 0 || self.blankz(1) => self.value(),
            b'*' | b'&' => {
                self.shape.aliases += usize::from(c == b'*');
                self.key_token();
                self.name();
            }
            b'!' => {
                self.key_token();
                self.tag();
            }
            b'|' | b'>' if self.flow == 0 => self.block_scalar(),
            b'\'' | b'"' => {
                self.key_token();
                self.quoted(c);
            }
            _ if self.plain_start() => {
                self.key_token();
                self.plain();
            }
            _ => self.advance(),
        }
    }

    /// Scans to the end, or until a depth passes `stop_at`.
    fn run(mut self) -> Shape {
        loop {
            self.skip_to_token();
            if self.end() || self.shape.flow.0 > self.stop_at || self.shape.block.0 > self.stop_at {
                return self.shape;
            }
            self.token();
        }
    }
}

/// Scans `text` and returns its nesting and alias count; stops early once a depth passes
/// `stop_at` (the caller refuses the file then).
pub fn shape(text: &str, stop_at: usize) -> Shape {
    Lexer {
        s: text.as_bytes(),
        i: 0,
        col: 0,
        line: 0,
        flow: 0,
        indents: Vec::new(),
        key_allowed: true,
        key_at: None,
        shape: Shape::default(),
        stop_at,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(t: &str) -> usize {
        shape(t, 1000).flow.0
    }

    #[test]
    fn brackets_in_scalars_and_comments_do_not_count() {
        assert_eq!(flow("a: [b, [c, {d: e}]]\n"), 3);
        assert_eq!(flow("a: '[[[['\nb: \"[[[[\\\"[[\"\n"), 0);
        assert_eq!(flow("a: x[[[[ # [[[[\n"), 0);
        assert_eq!(flow("a: |\n  [[[[\n  [[\nb: [1]\n"), 1);
        assert_eq!(flow("names: [don't, it''s]\n"), 1);
        let s = shape("a: *x\nb: [*y, *z]\nc: &w 1\n", 1000);
        assert_eq!(s.aliases, 3);
    }

    #[test]
    fn quotes_and_comments_cannot_hide_real_brackets() {
        // A quote inside a plain scalar is a character; the brackets after the comma are real.
        assert_eq!(flow("a: [x 'y, [[[[1]]]]]\n"), 5);
        // A '#' inside a multi-line quoted scalar is not a comment.
        assert_eq!(flow("a: ['x\n #', [[[[1]]]]]\n"), 5);
        // A plain scalar continued on a more indented line starting with a quote.
        assert_eq!(flow("a: foo\n  'bar\nb: [[[1]]]\n"), 3);
        // Closing brackets inside quotes do not lower the depth.
        assert_eq!(flow("a: [[[[']]]]', [[[[1]]]]]]]]\n"), 8);
    }

    #[test]
    fn deep_nesting_stops_the_scan_early() {
        let t = format!("a: {}", "[".repeat(100_000));
        let s = shape(&t, 64);
        assert_eq!(s.flow, (65, 1));
        let t: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(shape(&t, 64).block.0, 65);
    }
}
