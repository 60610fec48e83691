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
    /// A structure this reader refuses: a cycle, nesting or sharing past a cap, too many values.
    #[error("pickle structure refused: {0}")]
    Structure(String),
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
    "torchvision",
    "_codecs",
    "numpy",
    "pathlib",
    "copyreg",
    "types",
];
/// Most values one pickle may create (each costs at least one input byte).
const MAX_VALUES: usize = 10_000_000;
/// Most entries on the stack, marks on the mark stack and memo slots.
const MAX_STACK: usize = 10_000_000;
/// Most container elements the parser may copy (tuple/set constructors, parameters): bounds the work
/// a small stream can cause by copying one large list many times.
const MAX_COPIED: usize = 20_000_000;
/// Most dimensions a tensor may have (PyTorch's own limit is 64).
pub const MAX_DIMS: usize = 64;
/// Most hops from an object to the dict holding its state (Ultralytics modules need one).
const MAX_STATE_HOPS: usize = 8;
/// Deepest nesting [`Pickle::to_yaml`] follows.
pub const MAX_YAML_DEPTH: usize = 64;
/// Most nodes [`Pickle::to_yaml`] emits: shared sub-structures are expanded, so a small DAG could
/// otherwise describe an astronomically large tree.
pub const MAX_YAML_NODES: usize = 1_000_000;

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Value>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    /// Container elements copied so far (see [`MAX_COPIED`]).
    copied: usize,
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
    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.array()?))
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
            return Err(PickleError::Structure(format!(
                "more than {MAX_VALUES} values (at byte {})",
                self.pos
            )));
        }
        self.arena.push(v);
        self.push_id(self.arena.len() - 1)
    }
    /// Pushes an existing value (memo get, DUP) onto the bounded stack.
    fn push_id(&mut self, id: Id) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::Structure(format!(
                "stack deeper than {MAX_STACK} (at byte {})",
                self.pos
            )));
        }
        self.stack.push(id);
        Ok(())
    }
    /// Records `n` copied container elements against [`MAX_COPIED`].
    fn charge(&mut self, n: usize) -> Result<(), PickleError> {
        self.copied = self.copied.saturating_add(n);
        if self.copied > MAX_COPIED {
            return Err(PickleError::Structure(format!(
                "copies more than {MAX_COPIED} container elements (at byte {}): a small stream \
                 repeating a large list?",
                self.pos
            )));
        }
        Ok(())
    }
    fn pop(&mut self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        if m > self.stack.len() {
            return Err(self.err("MARK above the stack top"));
        }
        Ok(self.stack.split_off(m))
    }
    /// Pushes a MARK, bounded like the stack.
    fn mark(&mut self) -> Result<(), PickleError> {
        if self.marks.len() >= MAX_STACK {
            return Err(PickleError::Structure(format!(
                "more than {MAX_STACK} MARKs (at byte {})",
                self.pos
            )));
        }
        self.marks.push(self.stack.len());
        Ok(())
    }
    /// Stores the stack top in memo slot `i`, bounding the memo's size.
    fn memo_put(&mut self, i: u32) -> Result<(), PickleError> {
        let t = self.top()?;
        if self.memo.len() >= MAX_STACK && !self.memo.contains_key(&i) {
            return Err(PickleError::Structure(format!(
                "more than {MAX_STACK} memo entries (at byte {})",
                self.pos
            )));
        }
        self.memo.insert(i, t);
        Ok(())
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
    /// A copy of a tuple's or list's elements (empty for anything else), charged to the copy budget.
    fn items(&mut self, id: Id) -> Result<Vec<Id>, PickleError> {
        let v = match &self.arena[id] {
            Value::Tuple(v) | Value::List(v) => v.clone(),
            _ => vec![],
        };
        self.charge(v.len())?;
        Ok(v)
    }
    /// A tuple of at most [`MAX_DIMS`] integers (a tensor's size or stride).
    fn ints(&mut self, id: Id) -> Result<Vec<i64>, PickleError> {
        let items = self.items(id)?;
        if items.len() > MAX_DIMS {
            return Err(self.err(format!(
                "a tensor with {} dimensions (at most {MAX_DIMS})",
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|i| {
                self.int_of(i)
                    .ok_or_else(|| self.err("expected an int tuple"))
            })
            .collect()
    }
    /// How many elements copying this value copies.
    fn weight(&self, id: Id) -> usize {
        match &self.arena[id] {
            Value::List(v) | Value::Tuple(v) => v.len(),
            Value::Dict(v) => 2 * v.len(),
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Tensor(t) => t.size.len() + t.stride.len(),
            _ => 1,
        }
    }

    /// Applies a callable to arguments without executing anything: known constructors build plain
    /// values, anything else becomes an [`Value::Object`].
    fn reduce(&mut self, func: Id, args: Id) -> Result<Value, PickleError> {
        let name = match &self.arena[func] {
            Value::Global(g) => g.clone(),
            _ => return Err(self.err("REDUCE on a non-class")),
        };
        let a = self.items(args)?;
        Ok(match name.as_str() {
            "collections.OrderedDict" => Value::Dict(vec![]),
            "builtins.set" | "__builtin__.set" | "builtins.frozenset" => match a.first() {
                Some(&l) => Value::List(self.items(l)?),
                None => Value::List(vec![]),
            },
            "torch.Size" | "builtins.tuple" => match a.first() {
                Some(&l) => Value::Tuple(self.items(l)?),
                None => Value::Tuple(vec![]),
            },
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
                self.charge(self.weight(t))?;
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
                b'(' => self.mark()?,
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
                    let v = f64::from_be_bytes(self.array()?);
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
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
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
                    self.push_id(id)?;
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
                    let items = self.items(pid)?;
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
                    self.push_id(t)?;
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
        copied: 0,
    }
    .run()
}

impl Pickle {
    /// The value with this id.
    pub fn get(&self, id: Id) -> &Value {
        &self.arena[id]
    }

    /// The value holding an object's attributes: the object's BUILD state, followed through at most
    /// [`MAX_STATE_HOPS`] objects (a state that refers back to its object is refused); other values
    /// are their own.
    pub fn state(&self, id: Id) -> Result<Id, PickleError> {
        let mut seen = vec![id];
        let mut cur = id;
        for _ in 0..=MAX_STATE_HOPS {
            match self.get(cur) {
                Value::Object { state: Some(s), .. } => {
                    if seen.contains(s) {
                        return Err(PickleError::Structure(format!(
                            "the state of object {id} refers back to itself (a cycle)"
                        )));
                    }
                    seen.push(*s);
                    cur = *s;
                }
                _ => return Ok(cur),
            }
        }
        Err(PickleError::Structure(format!(
            "the state of object {id} is a chain of more than {MAX_STATE_HOPS} objects"
        )))
    }

    /// Looks a string key up in a dict (or in an object's state dict).
    pub fn lookup(&self, id: Id, key: &str) -> Result<Option<Id>, PickleError> {
        Ok(match self.get(self.state(id)?) {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(self.get(*k), Value::Str(s) if s == key))
                .map(|(_, v)| *v),
            _ => None,
        })
    }

    /// The number of entries of a dict (0 for anything else): the cost of a [`lookup`](Self::lookup).
    pub fn dict_len(&self, id: Id) -> usize {
        match self.get(id) {
            Value::Dict(items) => items.len(),
            _ => 0,
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

    /// Converts a plain value tree (dicts, lists, scalars; anything else becomes null) to YAML.
    /// Refuses cycles, nesting deeper than [`MAX_YAML_DEPTH`] and more than [`MAX_YAML_NODES`] nodes.
    pub fn to_yaml(&self, id: Id) -> Result<serde_yaml::Value, PickleError> {
        YamlBuilder {
            pk: self,
            path: Vec::new(),
            nodes: 0,
        }
        .build(id)
    }
}

/// The state of one [`Pickle::to_yaml`] conversion: the ids on the current path and the nodes so far.
struct YamlBuilder<'a> {
    pk: &'a Pickle,
    path: Vec<Id>,
    nodes: usize,
}

impl YamlBuilder<'_> {
    /// Converts one value.
    fn build(&mut self, id: Id) -> Result<serde_yaml::Value, PickleError> {
        use serde_yaml::Value as Y;
        self.nodes += 1;
        if self.nodes > MAX_YAML_NODES {
            return Err(PickleError::Structure(format!(
                "a value expands to more than {MAX_YAML_NODES} nodes (shared sub-structures?)"
            )));
        }
        Ok(match self.pk.get(id) {
            Value::None => Y::Null,
            Value::Bool(b) => Y::Bool(*b),
            Value::Int(i) => Y::from(*i),
            Value::Float(f) => Y::from(*f),
            Value::Str(s) => Y::String(s.clone()),
            Value::List(_) | Value::Tuple(_) | Value::Dict(_) => return self.enter(id),
            _ => Y::Null,
        })
    }

    /// Converts a container, refusing cycles and deep nesting.
    fn enter(&mut self, id: Id) -> Result<serde_yaml::Value, PickleError> {
        if self.path.contains(&id) {
            return Err(PickleError::Structure(format!(
                "value {id} contains itself (a cycle)"
            )));
        }
        if self.path.len() >= MAX_YAML_DEPTH {
            return Err(PickleError::Structure(format!(
                "values nested deeper than {MAX_YAML_DEPTH}"
            )));
        }
        self.path.push(id);
        let out = self.container(id);
        self.path.pop();
        out
    }

    /// Converts a list, tuple or dict whose id is on the path.
    fn container(&mut self, id: Id) -> Result<serde_yaml::Value, PickleError> {
        use serde_yaml::Value as Y;
        Ok(match self.pk.get(id) {
            Value::List(v) | Value::Tuple(v) => {
                Y::Sequence(v.iter().map(|&i| self.build(i)).collect::<Result<_, _>>()?)
            }
            Value::Dict(items) => {
                let mut m = serde_yaml::Mapping::new();
                for &(k, v) in items {
                    let k = self.build(k)?;
                    let v = self.build(v)?;
                    m.insert(k, v);
                }
                Y::Mapping(m)
            }
            _ => Y::Null,
        })
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
        let b = pk.lookup(pk.root, "b").unwrap().unwrap();
        assert!(matches!(pk.get(b), Value::List(v) if v.len() == 3));
        assert!(matches!(
            pk.get(pk.lookup(pk.root, "a").unwrap().unwrap()),
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
