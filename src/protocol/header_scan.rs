//! The fast path of [`Header::parse`]: one pass over a message line that validates it as
//! serde_json does and picks out the routing fields, for the shape nearly every message
//! has (routing fields that are plain strings, a pid, raw ids).
//!
//! It answers only when it is sure: `Some` for a line serde_json accepts, with the fields
//! serde_json would give; `None` for anything else, and the caller asks serde_json, whose
//! answer (accept or reject) stands. So an escape in a routing field or a key, a `null`
//! routing field, a control character in a string, a duplicate routing field, nesting
//! deeper than [`MAX_DEPTH`], or any malformed input makes it step aside rather than
//! decide. The differential test in `tests` holds it to that over generated lines.
//!
//! Hand-written because no crate does this: serde_json's derive path validates and reads
//! the fields too, but spends most of its time in generic visitor plumbing on ~60-byte
//! lines (BENCHMARKS.md has the measurement); simd-json and sonic-rs trade away exactly
//! the strictness this must keep (see issue 11).

use super::message::Header;
use std::borrow::Cow;

/// The routing fields as slices of the line. Kept small and plain (a 176-byte `Header`
/// returned through an `Option` cost two `memcpy` calls, a third of the scan's time).
#[derive(Default)]
pub(crate) struct Fields<'a> {
    cmd: Option<&'a str>,
    action: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    receiver_pid: Option<u32>,
    request_id: Option<&'a str>,
    reply_to: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// The [`Header`] these fields make, borrowing from the line.
    pub(crate) fn header(self) -> Header<'a> {
        Header {
            cmd: self.cmd.map(Cow::Borrowed),
            action: self.action.map(Cow::Borrowed),
            from_json: self.from.map(Cow::Borrowed),
            to: self.to.map(Cow::Borrowed),
            receiver_pid: self.receiver_pid,
            request_id: self.request_id.map(Cow::Borrowed),
            reply_to: self.reply_to.map(Cow::Borrowed),
        }
    }
}

/// Nesting the scanner follows (a bit per level); deeper lines go to serde_json, which
/// has no limit on ignored values.
const MAX_DEPTH: usize = 256;

/// The routing fields of `text`, or `None` when serde_json must decide.
pub(crate) fn scan(text: &str) -> Option<Fields<'_>> {
    let mut s = Scanner {
        t: text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut h = Fields::default();
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.eat(b'"')?;
            let key = s.plain_string()?;
            s.ws();
            s.eat(b':')?;
            s.ws();
            s.field(key, &mut h)?;
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    (s.i == s.b.len()).then_some(h)
}

struct Scanner<'a> {
    t: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Bytes a string runs over without a closer look: not `"`, `\`, nor a control character.
static PLAIN: [bool; 256] = {
    let mut t = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = false;
        c += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t
};

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// JSON whitespace, as serde_json skips it.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// The rest of a string whose opening quote was taken, when it holds no escape and no
    /// control character; its text without the quotes.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.i;
        while PLAIN[*self.b.get(self.i)? as usize] {
            self.i += 1;
        }
        if self.b[self.i] != b'"' {
            return None;
        }
        let end = self.i;
        self.i += 1;
        // The line is a str and the string starts and ends next to ASCII quotes: always
        // on character boundaries.
        self.t.get(start..end)
    }

    /// The rest of a string whose opening quote was taken, escapes checked as serde_json
    /// checks those of a string it skips (any `\uXXXX`, lone surrogates included).
    fn skip_string(&mut self) -> Option<()> {
        loop {
            while PLAIN[*self.b.get(self.i)? as usize] {
                self.i += 1;
            }
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.b.get(self.i..self.i + 4)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.i += 4;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A number as serde_json's grammar has it; its digits are not read.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        // serde_json rejects a digit straight after a leading 0 ("01"); it would come next.
        match self.peek() {
            Some(b'0'..=b'9') => None,
            _ => Some(()),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Any JSON value, nested or not, without recursion; `None` if it is not valid JSON
    /// (or nests past [`MAX_DEPTH`]).
    fn skip_value(&mut self) -> Option<()> {
        // Bit d set: level d is an object (else an array).
        let mut kinds = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        loop {
            // A value.
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    self.skip_string()?;
                }
                b'-' | b'0'..=b'9' => self.skip_number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                open @ (b'[' | b'{') => {
                    self.i += 1;
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    let (word, bit) = (depth / 64, 1u64 << (depth % 64));
                    if open == b'{' {
                        kinds[word] |= bit;
                    } else {
                        kinds[word] &= !bit;
                    }
                    depth += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        depth -= 1;
                    } else {
                        if open == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: close levels until one goes on with another value.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let d = depth - 1;
                let object = kinds[d / 64] & (1u64 << (d % 64)) != 0;
                self.ws();
                match self.next()? {
                    b',' => {
                        self.ws();
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if object => depth -= 1,
                    b']' if !object => depth -= 1,
                    _ => return None,
                }
            }
        }
    }

    /// A key of a nested object and its colon; leaves the scanner at the value.
    fn key(&mut self) -> Option<()> {
        self.eat(b'"')?;
        self.skip_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    /// The value of top-level `key`, stored in `h` if it is a routing field.
    fn field(&mut self, key: &str, h: &mut Fields<'a>) -> Option<()> {
        let start = self.i;
        let slot = match key {
            "cmd" => &mut h.cmd,
            "action" => &mut h.action,
            "to" => &mut h.to,
            "from" => {
                self.skip_value()?;
                return set(&mut h.from, self.t.get(start..self.i)?);
            }
            "requestId" | "replyTo" => {
                // serde reads `null` here as absent, which the slow path sorts out.
                if self.peek()? == b'n' {
                    return None;
                }
                self.skip_value()?;
                let slot = if key == "requestId" {
                    &mut h.request_id
                } else {
                    &mut h.reply_to
                };
                return set(slot, self.t.get(start..self.i)?);
            }
            "receiverPid" => {
                if h.receiver_pid.is_some() {
                    return None;
                }
                h.receiver_pid = Some(self.pid()?);
                return Some(());
            }
            _ => return self.skip_value(),
        };
        self.eat(b'"')?;
        let value = self.plain_string()?;
        set(slot, value)
    }

    /// `receiverPid` as a plain number or a string of digits that fit a u32.
    fn pid(&mut self) -> Option<u32> {
        let digits = if self.peek()? == b'"' {
            self.i += 1;
            self.plain_string()?
        } else {
            let start = self.i;
            self.skip_number()?;
            self.t.get(start..self.i)?
        };
        // Plain digits only: serde_json reads `-0`, `1.0` or `1e3` as other types, and
        // turns them down for a pid; str::parse would take a leading `+`.
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

/// Stores a routing field seen for the first time; a second one is serde_json's to refuse.
fn set<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded xorshift: the same corpus on every run.
    struct Rng(u64, bool);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// A deliberate error, one time in `one_in`, in the lines generated noisy.
        fn noise(&mut self, one_in: usize) -> bool {
            self.1 && self.chance(one_in)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }
    }

    const ROUTING: [&str; 7] = [
        "cmd",
        "action",
        "to",
        "from",
        "receiverPid",
        "requestId",
        "replyTo",
    ];

    fn ws(rng: &mut Rng, out: &mut String) {
        if rng.chance(4) {
            for _ in 0..rng.below(3) {
                out.push(rng.pick(&[' ', '\t', '\n', '\r']));
            }
        }
        if rng.noise(30) {
            out.push(rng.pick(&['\u{c}', '\u{a0}', '\u{b}']));
        }
    }

    fn string(rng: &mut Rng, out: &mut String) {
        out.push('"');
        for _ in 0..rng.below(12) {
            match rng.below(14) {
                0 => out.push_str(
                    rng.pick(&[r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"]),
                ),
                1 => out.push_str(rng.pick(&[
                    r"\u0061",
                    r"\u00e9",
                    r"\uD83D\uDE00",
                    r"\uD83D",
                    r"\uDE00",
                    r"\uDE00\uD83D",
                ])),
                2 => out.push(rng.pick(&['\u{7f}', 'é', '😀', '\u{2028}'])),
                3 if rng.noise(3) => {
                    out.push_str(rng.pick(&[r"\uZZZZ", r"\u12", r"\x41", r"\'", r"\U0041"]))
                }
                4 if rng.noise(3) => out.push(rng.pick(&['\u{0}', '\u{1f}', '\t', '\n'])),
                3 => out.push_str(rng.pick(&["app", "agent", "master", "parent", "x-1"])),
                _ => out.push(char::from(b'a' + rng.below(26) as u8)),
            }
        }
        if !rng.noise(40) {
            out.push('"');
        }
    }

    fn number(rng: &mut Rng, out: &mut String) {
        let n = match rng.below(12) {
            0 => "0".to_string(),
            1 => "-0".to_string(),
            2 => u32::MAX.to_string(),
            3 => (u64::from(u32::MAX) + 1).to_string(),
            4 => "123456789012345678901234567890".to_string(),
            5 => "1e400".to_string(),
            6 => "-1.5E-7".to_string(),
            7 if rng.noise(2) => rng
                .pick(&[
                    "01", "1.", ".5", "-", "1e", "1e+", "+1", "0x10", "1.2.3", "--1", "NaN",
                    "Infinity",
                ])
                .to_string(),
            8 => format!("{}.{}", rng.next() % 1000, rng.next() % 1000),
            9 => format!("-{}", rng.next() % 100_000),
            _ => (rng.next() % 100_000).to_string(),
        };
        out.push_str(&n);
    }

    fn value(rng: &mut Rng, out: &mut String, depth: usize) {
        ws(rng, out);
        let kinds = if depth > 6 { 6 } else { 9 };
        match rng.below(kinds) {
            0 | 1 => string(rng, out),
            2 | 3 => number(rng, out),
            4 => out.push_str(rng.pick(&["true", "false", "null"])),
            5 if rng.noise(2) => {
                out.push_str(rng.pick(&["", "]", "}", ",", ":", "'a'", "nul", "True", "nulll"]))
            }
            5 => out.push_str("null"),
            6 => {
                out.push('[');
                for i in 0..rng.below(4) {
                    if i > 0 || rng.noise(30) {
                        out.push(',');
                    }
                    value(rng, out, depth + 1);
                }
                if rng.noise(30) {
                    out.push(',');
                }
                ws(rng, out);
                out.push(']');
            }
            _ => object(rng, out, depth + 1, false),
        }
        ws(rng, out);
    }

    fn object(rng: &mut Rng, out: &mut String, depth: usize, top: bool) {
        out.push('{');
        for i in 0..rng.below(7) {
            if i > 0 || rng.noise(40) {
                out.push(',');
            }
            ws(rng, out);
            if top && rng.chance(2) {
                let key = rng.pick(&ROUTING);
                match rng.below(40) {
                    0 => out.push_str(r#""\u0061ction""#),
                    1 => out.push_str(r#""act\"ion""#),
                    _ => {
                        out.push('"');
                        out.push_str(key);
                        out.push('"');
                    }
                }
                ws(rng, out);
                out.push(':');
                match key {
                    "receiverPid" if rng.chance(2) => {
                        out.push_str(rng.pick(&[
                            "42",
                            "\"42\"",
                            "\"+42\"",
                            "\"007\"",
                            "\"\"",
                            "4294967295",
                            "4294967296",
                            "\"4294967296\"",
                            "-1",
                            "1.0",
                            "1e3",
                            "null",
                            "\"4\\u0032\"",
                        ]));
                    }
                    "to" | "action" | "cmd" if rng.chance(2) => {
                        out.push_str(rng.pick(&[
                            "\"agent\"",
                            "\"app\"",
                            "\"NODE_HANDLE_ACK\"",
                            "null",
                            "7",
                            "\"a\\u0067ent\"",
                            "\"\\uD800\"",
                            "[]",
                        ]));
                    }
                    _ => value(rng, out, depth),
                }
            } else {
                if rng.noise(25) {
                    out.push_str("nokey");
                } else {
                    string(rng, out);
                }
                ws(rng, out);
                if !rng.noise(50) {
                    out.push(':');
                }
                value(rng, out, depth);
            }
        }
        if !rng.noise(40) {
            ws(rng, out);
            out.push('}');
        }
    }

    /// A line as a worker might send it, or a mangled one.
    fn line(rng: &mut Rng) -> Vec<u8> {
        rng.1 = rng.chance(2);
        let mut text = String::new();
        ws(rng, &mut text);
        if rng.chance(50) {
            // Deep nesting under an ignored key, sometimes far past anything the scanner
            // follows, sometimes unbalanced.
            let depth = rng.pick(&[10, 255, 256, 257, 1000, 100_000]);
            let open = if rng.chance(2) { "[" } else { "{\"k\":" };
            let close = if open == "[" { "]" } else { "}" };
            text.push_str("{\"action\":\"deep\",\"data\":");
            text.push_str(&open.repeat(depth));
            text.push('1');
            text.push_str(&close.repeat(depth - usize::from(rng.noise(3))));
            text.push('}');
        } else {
            object(rng, &mut text, 0, true);
        }
        ws(rng, &mut text);
        if rng.noise(30) {
            text.push_str(rng.pick(&["x", "{}", ",", "}"]));
        }
        let mut bytes = text.into_bytes();
        let mangle = if rng.1 { rng.below(6) } else { 9 };
        match mangle {
            0 if !bytes.is_empty() => {
                let cut = rng.below(bytes.len());
                bytes.truncate(cut);
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(
                    at,
                    rng.pick(&[0xff, 0xc3, 0x80, b'"', b'\\', b',', b'{', b']', 0]),
                );
            }
            _ => {}
        }
        bytes
    }

    #[test]
    fn the_scanner_never_disagrees_with_serde_json() {
        // CLUTCH_DIFF_CASES and CLUTCH_DIFF_SEED run it longer or elsewhere, as a fuzzer.
        let env = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let mut rng = Rng(env("CLUTCH_DIFF_SEED", 0x00c1_07c4_5eed_0011).max(1), false);
        let (mut answered, mut rejected_by_serde, mut not_utf8) = (0, 0, 0);
        let cases = env("CLUTCH_DIFF_CASES", 200_000) as usize;
        for case in 0..cases {
            let bytes = line(&mut rng);
            // The messenger checks UTF-8 before any JSON: invalid bytes never get here.
            let Ok(text) = std::str::from_utf8(&bytes) else {
                not_utf8 += 1;
                continue;
            };
            let slow = Header::parse_with_serde(text);
            if slow.is_err() {
                rejected_by_serde += 1;
            }
            if let Some(fast) = scan(text).map(Fields::header) {
                answered += 1;
                match slow {
                    Ok(slow) => assert_eq!(fast, slow, "case {case}: {text:?}"),
                    Err(e) => panic!(
                        "case {case}: serde_json rejects ({e}) what the scanner took: {text:?}"
                    ),
                }
            }
        }
        // The corpus must exercise both sides.
        assert!(
            answered > cases / 10,
            "only {answered} lines answered by the scanner"
        );
        assert!(
            rejected_by_serde > cases / 10,
            "only {rejected_by_serde} lines rejected"
        );
        assert!(not_utf8 > 0);
    }

    #[test]
    fn the_usual_lines_are_answered_by_the_scanner() {
        for line in [
            r#"{"action":"tick","data":{"seq":123456,"ok":true},"to":"agent"}"#,
            r#"{"cmd":"NODE_HANDLE_ACK"}"#,
            r#" { "action" : "x" , "receiverPid" : "42", "from":"app" } "#,
            r#"{"action":"ask","requestId":7,"data":[1,2.5e3,"\u00e9\n",null]}"#,
            r#"{"action":"answer","replyTo":"x-1","data":{"a":{"b":[[]]}}}"#,
            r#"{}"#,
        ] {
            let fast = scan(line)
                .unwrap_or_else(|| panic!("{line} went to serde_json"))
                .header();
            assert_eq!(fast, Header::parse_with_serde(line).unwrap(), "{line}");
        }
    }

    #[test]
    fn what_it_cannot_be_sure_of_goes_to_serde_json() {
        for line in [
            r#"{"action":"a\"b"}"#,
            r#"{"\u0061ction":"a"}"#,
            r#"{"action":null}"#,
            r#"{"action":"a","action":"b"}"#,
            r#"{"action":"a","requestId":null}"#,
            r#"{"action":"a","receiverPid":"+1"}"#,
            r#"{"action":"a","data":"tab	inside"}"#,
            r#"{"action":"a","data":[1,]}"#,
            r#"{"action":"a"} x"#,
        ] {
            assert!(scan(line).is_none(), "{line}");
        }
    }
}
