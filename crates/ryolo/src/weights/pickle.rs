//! A safe pickle reader: it builds a tree of plain values and never calls anything. Class references
//! are only recorded (and only from an allow-list of modules); tensors become references into the
//! checkpoint's storage files (spec/checkpoint.md §2, §5).

use std::collections::HashMap;
use thiserror::Error;

/// Why a pickle could not be read.
#[derive(Debug, Error)]
pub enum PickleError {
    /// The stream ended in the middle of an opcode.
    #[error("pickle truncated at byte {0}")]
    Truncated(usize),
    /// An opcode this reader does not implement.
    #[error("unsupported pickle opcode 0x{op:02x} at byte {pos}")]
    Opcode {
        /// The opcode byte.
        op: u8,
        /// Its offset.
        pos: usize,
    },
    /// A reference to a Python global outside the allow-list (e.g. `os.system`).
    #[error("refusing pickle global '{0}': not a torch/ultralytics/collections class (the file may be malicious)")]
    Global(String),
    /// Structurally invalid stream (stack underflow, bad memo index, ...).
    #[error("malformed pickle at byte {pos}: {msg}")]
    Malformed {
        /// Offset.
        pos: usize,
        /// What was wrong.
        msg: String,
    },
}

/// Index of a value in the [`Pickle`] arena.
pub type Id = usize;

/// A pickled value. Containers hold arena ids, so shared references stay shared.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list (or set).
    List(Vec<Id>),
    /// A tuple.
    Tuple(Vec<Id>),
    /// A dict (or OrderedDict), in insertion order.
    Dict(Vec<(Id, Id)>),
    /// A reference to a class or function: `module.name`.
    Global(String),
    /// An object made from a class: its class path, constructor args and `__setstate__` state.
    Object {
        /// `module.Class`.
        class: String,
        /// Constructor arguments (a tuple id).
        args: Id,
        /// State set by BUILD, if any.
        state: Option<Id>,
    },
    /// A persistent-id storage reference: dtype class name and storage key.
    Storage {
        /// e.g. `HalfStorage`.
        dtype: String,
        /// The entry name under `data/`.
        key: String,
    },
    /// A tensor view of a storage.
    Tensor(TensorRef),
}

/// Where a tensor's data lives and how to view it.
#[derive(Debug, Clone)]
pub struct TensorRef {
    /// Storage class name (`FloatStorage`, `HalfStorage`, ...).
    pub dtype: String,
    /// Storage key (`data/<key>` in the zip).
    pub key: String,
    /// Offset in elements.
    pub offset: i64,
    /// Shape.
    pub size: Vec<i64>,
    /// Strides in elements.
    pub stride: Vec<i64>,
}

/// A parsed pickle: the value arena and the root id.
#[derive(Debug)]
pub struct Pickle {
    /// All values.
    pub arena: Vec<Value>,
    /// The top-level object.
    pub root: Id,
}

const ALLOWED_MODULES: &[&str] = &[
    "torch",
    "collections",
    "builtins",
    "__builtin__",
    "ultralytics",
    "_codecs",
    "numpy",
    "pathlib",
    "copyreg",
    "types",
];
const MAX_VALUES: usize = 50_000_000;

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Value>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            pos: self.pos,
            msg: msg.into(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return Err(PickleError::Truncated(self.pos));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.data.len()))?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    fn string(&mut self, n: usize) -> Result<String, PickleError> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("invalid UTF-8 string"))
    }
    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        if self.arena.len() >= MAX_VALUES {
            return Err(self.err("too many values"));
        }
        self.arena.push(v);
        self.stack.push(self.arena.len() - 1);
        Ok(())
    }
    fn pop(&mut self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("non-empty"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        Ok(self.stack.split_off(m))
    }
    fn top(&self) -> Result<Id, PickleError> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.err("empty stack"))
    }
    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        let root = module.split('.').next().unwrap_or("");
        if !ALLOWED_MODULES.contains(&root) {
            return Err(PickleError::Global(format!("{module}.{name}")));
        }
        self.push(Value::Global(format!("{module}.{name}")))
    }
    fn str_of(&self, id: Id) -> Option<&str> {
        match &self.arena[id] {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn int_of(&self, id: Id) -> Option<i64> {
        match &self.arena[id] {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
    fn items(&self, id: Id) -> Vec<Id> {
        match &self.arena[id] {
            Value::Tuple(v) | Value::List(v) => v.clone(),
            _ => vec![],
        }
    }
    fn ints(&self, id: Id) -> Result<Vec<i64>, PickleError> {
        self.items(id)
            .into_iter()
            .map(|i| {
                self.int_of(i)
                    .ok_or_else(|| self.err("expected an int tuple"))
            })
            .collect()
    }

    /// Applies a callable to arguments without executing anything: known constructors build plain
    /// values, anything else becomes an [`Value::Object`].
    fn reduce(&mut self, func: Id, args: Id) -> Result<Value, PickleError> {
        let name = match &self.arena[func] {
            Value::Global(g) => g.clone(),
            _ => return Err(self.err("REDUCE on a non-class")),
        };
        let a = self.items(args);
        Ok(match name.as_str() {
            "collections.OrderedDict" => Value::Dict(vec![]),
            "builtins.set" | "__builtin__.set" | "builtins.frozenset" => {
                Value::List(a.first().map(|&l| self.items(l)).unwrap_or_default())
            }
            "torch.Size" | "builtins.tuple" => {
                Value::Tuple(a.first().map(|&l| self.items(l)).unwrap_or_default())
            }
            "_codecs.encode" => {
                let s = a.first().and_then(|&i| self.str_of(i)).unwrap_or_default();
                // latin-1 encoding of the code points.
                Value::Bytes(s.chars().map(|c| c as u32 as u8).collect())
            }
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                if a.len() < 4 {
                    return Err(self.err("_rebuild_tensor_v2 needs 4+ arguments"));
                }
                let (dtype, key) = match &self.arena[a[0]] {
                    Value::Storage { dtype, key } => (dtype.clone(), key.clone()),
                    _ => return Err(self.err("tensor without a storage")),
                };
                let offset = self
                    .int_of(a[1])
                    .ok_or_else(|| self.err("bad storage offset"))?;
                Value::Tensor(TensorRef {
                    dtype,
                    key,
                    offset,
                    size: self.ints(a[2])?,
                    stride: self.ints(a[3])?,
                })
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                let t = *a
                    .first()
                    .ok_or_else(|| self.err("_rebuild_parameter without a tensor"))?;
                self.arena[t].clone()
            }
            _ => Value::Object {
                class: name,
                args,
                state: None,
            },
        })
    }

    fn run(mut self) -> Result<Pickle, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME
                }
                b'.' => {
                    let root = self.pop()?;
                    return Ok(Pickle {
                        arena: self.arena,
                        root,
                    });
                }
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.push(Value::Int(v))?
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Value::Int(v))?
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.push(Value::Int(v))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(self.err("integer too large"));
                    }
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.push(Value::Str(s))?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.push(Value::Str(s))?
                }
                0x8d => {
                    let n =
                        usize::try_from(self.u64()?).map_err(|_| self.err("string too long"))?;
                    let s = self.string(n)?;
                    self.push(Value::Str(s))?
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'}' => self.push(Value::Dict(vec![]))?,
                b']' => self.push(Value::List(vec![]))?,
                b')' => self.push(Value::Tuple(vec![]))?,
                0x8f => self.push(Value::List(vec![]))?, // EMPTY_SET
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0], c[1]))
                        .collect();
                    self.push(Value::Dict(pairs))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))?
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let t = self.top()?;
                    self.memo.insert(i, t);
                }
                b'r' => {
                    let i = self.u32()?;
                    let t = self.top()?;
                    self.memo.insert(i, t);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let t = self.top()?;
                    self.memo.insert(i, t);
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        self.u8()? as u32
                    } else {
                        self.u32()?
                    };
                    let id = *self
                        .memo
                        .get(&i)
                        .ok_or_else(|| self.err(format!("memo {i} not set")))?;
                    self.stack.push(id);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (m, n) = (
                        self.str_of(module).unwrap_or("").to_string(),
                        self.str_of(name).unwrap_or("").to_string(),
                    );
                    self.global(m, n)?
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Value::List(items) => items.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    match &mut self.arena[l] {
                        Value::List(v) => v.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    match &mut self.arena[d] {
                        Value::Dict(items) => items.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?;
                    match &mut self.arena[d] {
                        Value::Dict(v) => v.extend(
                            items
                                .chunks(2)
                                .filter(|c| c.len() == 2)
                                .map(|c| (c[0], c[1])),
                        ),
                        _ => return Err(self.err("SETITEMS on a non-dict")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.push(v)?
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.reduce(cls, args)?;
                    self.push(v)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    // BUILD on a dict/tensor (e.g. OrderedDict state, tensor metadata) is ignored.
                    if let Value::Object { state: s, .. } = &mut self.arena[obj] {
                        *s = Some(state);
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let items = self.items(pid);
                    if items.len() < 3 || self.str_of(items[0]) != Some("storage") {
                        return Err(self.err("unsupported persistent id"));
                    }
                    let dtype = match &self.arena[items[1]] {
                        Value::Global(g) => g.rsplit('.').next().unwrap_or("").to_string(),
                        _ => return Err(self.err("storage without a dtype class")),
                    };
                    let key = self
                        .str_of(items[2])
                        .ok_or_else(|| self.err("storage key is not a string"))?
                        .to_string();
                    self.push(Value::Storage { dtype, key })?
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'1' => {
                    self.pop_mark()?;
                }
                _ => {
                    return Err(PickleError::Opcode {
                        op,
                        pos: self.pos - 1,
                    })
                }
            }
        }
    }
}

/// Parses a pickle stream into a value tree.
pub fn parse(data: &[u8]) -> Result<Pickle, PickleError> {
    Parser {
        data,
        pos: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

impl Pickle {
    /// The value with this id.
    pub fn get(&self, id: Id) -> &Value {
        &self.arena[id]
    }
    /// Looks a string key up in a dict (or in an object's state dict).
    pub fn lookup(&self, id: Id, key: &str) -> Option<Id> {
        match self.get(id) {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(self.get(*k), Value::Str(s) if s == key))
                .map(|(_, v)| *v),
            Value::Object { state: Some(s), .. } => self.lookup(*s, key),
            _ => None,
        }
    }
    /// The `(key, value)` pairs of a dict with string keys.
    pub fn dict_items(&self, id: Id) -> Vec<(String, Id)> {
        match self.get(id) {
            Value::Dict(items) => items
                .iter()
                .filter_map(|(k, v)| match self.get(*k) {
                    Value::Str(s) => Some((s.clone(), *v)),
                    Value::Int(i) => Some((i.to_string(), *v)),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    }
    /// Converts a plain value tree (dicts, lists, scalars) to YAML, up to a depth limit.
    pub fn to_yaml(&self, id: Id) -> serde_yaml::Value {
        self.to_yaml_depth(id, 0)
    }
    fn to_yaml_depth(&self, id: Id, depth: usize) -> serde_yaml::Value {
        use serde_yaml::Value as Y;
        if depth > 64 {
            return Y::Null;
        }
        match self.get(id) {
            Value::None => Y::Null,
            Value::Bool(b) => Y::Bool(*b),
            Value::Int(i) => Y::from(*i),
            Value::Float(f) => Y::from(*f),
            Value::Str(s) => Y::String(s.clone()),
            Value::List(v) | Value::Tuple(v) => Y::Sequence(
                v.iter()
                    .map(|&i| self.to_yaml_depth(i, depth + 1))
                    .collect(),
            ),
            Value::Dict(items) => {
                let mut m = serde_yaml::Mapping::new();
                for (k, v) in items {
                    m.insert(
                        self.to_yaml_depth(*k, depth + 1),
                        self.to_yaml_depth(*v, depth + 1),
                    );
                }
                Y::Mapping(m)
            }
            _ => Y::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dict() {
        // pickle.dumps({'a': 1, 'b': [True, None, 'x']}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(\x88NX\x01\x00\x00\x00xq\x04eu.";
        let pk = parse(p).unwrap();
        let b = pk.lookup(pk.root, "b").unwrap();
        assert!(matches!(pk.get(b), Value::List(v) if v.len() == 3));
        assert!(matches!(
            pk.get(pk.lookup(pk.root, "a").unwrap()),
            Value::Int(1)
        ));
    }

    #[test]
    fn refuses_os_system() {
        // The classic exploit: cos\nsystem\n(S'echo pwned'\ntR.
        let p = b"cos\nsystem\n(X\x0b\x00\x00\x00echo pwnedtR.";
        let e = parse(p).unwrap_err();
        assert!(e.to_string().contains("os.system"), "{e}");
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        assert!(matches!(
            parse(b"\x80\x02}q\x00(X\x01\x00"),
            Err(PickleError::Truncated(_))
        ));
        assert!(matches!(parse(b"\xff"), Err(PickleError::Opcode { .. })));
        assert!(parse(b"").is_err());
        assert!(parse(b"\x80\x02t.").is_err());
        assert!(parse(b"\x80\x02h\x05.").is_err());
    }
}
