//! A protocol-2 pickle writer for the object graph `torch.save` produces (spec/checkpoint-write.md
//! §2). It emits only the opcodes torch's `weights_only` unpickler implements, and memoises globals
//! and module objects as CPython does, so a shared module (the one SiLU) stays one object.

use std::collections::HashMap;
use std::rc::Rc;

/// The element type of a tensor storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// IEEE binary16 (`torch.HalfStorage`).
    Half,
    /// IEEE binary32 (`torch.FloatStorage`).
    Float,
    /// Signed 64-bit integers (`torch.LongStorage`).
    Long,
}

impl StorageKind {
    /// The storage class name torch pickles (`HalfStorage`, ...).
    pub fn class(self) -> &'static str {
        match self {
            StorageKind::Half => "HalfStorage",
            StorageKind::Float => "FloatStorage",
            StorageKind::Long => "LongStorage",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageKind::Half => 2,
            StorageKind::Float => 4,
            StorageKind::Long => 8,
        }
    }
}

/// A contiguous tensor with its own storage: element type, shape and little-endian bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Element type.
    pub kind: StorageKind,
    /// Shape (empty for a 0-d tensor).
    pub shape: Vec<i64>,
    /// The elements, row-major, little-endian.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Number of elements the shape holds.
    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// A Python object made with `Class.__new__(Class)` and a `__setstate__` dict (an `nn.Module`).
#[derive(Debug)]
pub struct Object {
    /// The class's `__module__`, e.g. `ultralytics.nn.modules.conv`.
    pub module: &'static str,
    /// The class name, e.g. `Conv`.
    pub class: &'static str,
    /// The instance dict, in assignment order.
    pub state: Vec<(String, Py)>,
}

/// A Python value as `torch.save` pickles it.
#[derive(Debug, Clone)]
pub enum Py {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `tuple`.
    Tuple(Vec<Py>),
    /// A `list`.
    List(Vec<Py>),
    /// A plain `dict`, in insertion order.
    Dict(Vec<(Py, Py)>),
    /// An empty `collections.OrderedDict()` (the hook dicts).
    OrderedDict,
    /// An empty `set()`.
    EmptySet,
    /// `torch.Size((..))`.
    Size(Vec<i64>),
    /// A tensor (`_rebuild_tensor_v2`, requires_grad False).
    Tensor(Rc<Blob>),
    /// An `nn.Parameter` (`_rebuild_parameter`, requires_grad False).
    Param(Rc<Blob>),
    /// A module object; clones of the same `Rc` are pickled once and referenced by memo.
    Object(Rc<Object>),
}

impl Py {
    /// A `str` value.
    pub fn s(v: impl Into<String>) -> Py {
        Py::Str(v.into())
    }

    /// A tuple of ints.
    pub fn ints(v: &[i64]) -> Py {
        Py::Tuple(v.iter().map(|&i| Py::Int(i)).collect())
    }

    /// A dict with string keys.
    pub fn str_dict(items: Vec<(&str, Py)>) -> Py {
        Py::Dict(items.into_iter().map(|(k, v)| (Py::s(k), v)).collect())
    }
}

/// A serialised pickle and the storages it refers to (`data/<index>` in the zip).
#[derive(Debug)]
pub struct Pickled {
    /// The `data.pkl` bytes.
    pub pkl: Vec<u8>,
    /// Storages in key order (`"0"`, `"1"`, ...).
    pub storages: Vec<Rc<Blob>>,
    /// The globals written, as `module name` (for checks).
    pub globals: Vec<String>,
}

/// Pickles `root` with protocol 2.
pub fn dump(root: &Py) -> Pickled {
    let mut e = Encoder::default();
    e.out.extend_from_slice(&[0x80, 2]);
    e.value(root);
    e.out.push(b'.');
    Pickled {
        pkl: e.out,
        storages: e.storages,
        globals: e.global_order,
    }
}

/// The opcode writer with its memo.
#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    memo_len: u32,
    globals: HashMap<(&'static str, &'static str), u32>,
    global_order: Vec<String>,
    objects: HashMap<*const Object, u32>,
    storages: Vec<Rc<Blob>>,
}

impl Encoder {
    /// BINPUT / LONG_BINPUT of the value on the stack; returns its memo index.
    fn put(&mut self) -> u32 {
        let i = self.memo_len;
        self.memo_len += 1;
        if i < 256 {
            self.out.extend_from_slice(&[b'q', i as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
        i
    }

    /// BINGET / LONG_BINGET of memo entry `i`.
    fn get(&mut self, i: u32) {
        if i < 256 {
            self.out.extend_from_slice(&[b'h', i as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&i.to_le_bytes());
        }
    }

    /// `GLOBAL module name`, memoised.
    fn global(&mut self, module: &'static str, name: &'static str) {
        if let Some(&i) = self.globals.get(&(module, name)) {
            self.get(i);
            return;
        }
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        let i = self.put();
        self.globals.insert((module, name), i);
        self.global_order.push(format!("{module} {name}"));
    }

    /// An int in the shortest protocol-2 form.
    fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            let bytes = long_bytes(v);
            self.out.extend_from_slice(&[0x8a, bytes.len() as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    /// BINUNICODE.
    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// A tuple: `)`, TUPLE1-3, or MARK ... TUPLE.
    fn tuple(&mut self, items: &[Py]) {
        match items.len() {
            0 => self.out.push(b')'),
            n @ 1..=3 => {
                for v in items {
                    self.value(v);
                }
                self.out.push([0x85, 0x86, 0x87][n - 1]);
            }
            _ => {
                self.out.push(b'(');
                for v in items {
                    self.value(v);
                }
                self.out.push(b't');
            }
        }
    }

    /// A list: `]` then APPEND or batches of APPENDS.
    fn list(&mut self, items: &[Py]) {
        self.out.push(b']');
        if items.len() == 1 {
            self.value(&items[0]);
            self.out.push(b'a');
            return;
        }
        for chunk in items.chunks(1000) {
            self.out.push(b'(');
            for v in chunk {
                self.value(v);
            }
            self.out.push(b'e');
        }
    }

    /// A dict: `}` then SETITEM or batches of SETITEMS.
    fn dict(&mut self, items: &[(Py, Py)]) {
        self.out.push(b'}');
        if items.len() == 1 {
            self.value(&items[0].0);
            self.value(&items[0].1);
            self.out.push(b's');
            return;
        }
        for chunk in items.chunks(1000) {
            self.out.push(b'(');
            for (k, v) in chunk {
                self.value(k);
                self.value(v);
            }
            self.out.push(b'u');
        }
    }

    /// `OrderedDict()`.
    fn odict(&mut self) {
        self.global("collections", "OrderedDict");
        self.out.extend_from_slice(b")R");
    }

    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`.
    fn tensor(&mut self, b: &Rc<Blob>) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        let key = self.storages.len();
        self.storages.push(b.clone());
        self.out.push(b'(');
        self.str("storage");
        let class = b.kind.class();
        self.global("torch", class);
        self.str(&key.to_string());
        self.str("cpu");
        self.int(b.numel());
        self.out.extend_from_slice(b"tQ");
        self.int(0);
        self.tuple(&b.shape.iter().map(|&s| Py::Int(s)).collect::<Vec<_>>());
        self.tuple(&contiguous_strides(&b.shape));
        self.out.push(0x89);
        self.odict();
        self.out.extend_from_slice(b"tR");
    }

    /// `_rebuild_parameter(tensor, False, OrderedDict())`.
    fn param(&mut self, b: &Rc<Blob>) {
        self.global("torch._utils", "_rebuild_parameter");
        self.tensor(b);
        self.out.push(0x89);
        self.odict();
        self.out.extend_from_slice(&[0x87, b'R']);
    }

    /// A module: `GLOBAL cls; EMPTY_TUPLE; NEWOBJ; BINPUT; state; BUILD`, or BINGET when seen.
    fn object(&mut self, o: &Rc<Object>) {
        let key = Rc::as_ptr(o);
        if let Some(&i) = self.objects.get(&key) {
            self.get(i);
            return;
        }
        self.global(o.module, o.class);
        self.out.extend_from_slice(&[b')', 0x81]);
        let i = self.put();
        self.objects.insert(key, i);
        let items: Vec<(Py, Py)> = o
            .state
            .iter()
            .map(|(k, v)| (Py::s(k.as_str()), v.clone()))
            .collect();
        self.dict(&items);
        self.out.push(b'b');
    }

    /// Any value.
    fn value(&mut self, v: &Py) {
        match v {
            Py::None => self.out.push(b'N'),
            Py::Bool(true) => self.out.push(0x88),
            Py::Bool(false) => self.out.push(0x89),
            Py::Int(i) => self.int(*i),
            Py::Float(f) => {
                self.out.push(b'G');
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Py::Str(s) => self.str(s),
            Py::Tuple(t) => self.tuple(t),
            Py::List(l) => self.list(l),
            Py::Dict(d) => self.dict(d),
            Py::OrderedDict => self.odict(),
            Py::EmptySet => {
                self.global("__builtin__", "set");
                self.out.extend_from_slice(&[b']', 0x85, b'R']);
            }
            Py::Size(s) => {
                self.global("torch", "Size");
                self.out.push(b'(');
                for &d in s {
                    self.int(d);
                }
                self.out.extend_from_slice(&[b't', 0x85, b'R']);
            }
            Py::Tensor(b) => self.tensor(b),
            Py::Param(b) => self.param(b),
            Py::Object(o) => self.object(o),
        }
    }
}

/// Row-major strides of a shape, as pickled ints.
fn contiguous_strides(shape: &[i64]) -> Vec<Py> {
    let mut strides = vec![Py::Int(1); shape.len()];
    let mut acc = 1i64;
    for (i, &s) in shape.iter().enumerate().rev() {
        strides[i] = Py::Int(acc);
        acc *= s.max(1);
    }
    strides
}

/// The minimal little-endian two's-complement bytes of `v` (pickle LONG1).
fn long_bytes(v: i64) -> Vec<u8> {
    let mut b = v.to_le_bytes().to_vec();
    while b.len() > 1 {
        let last = b[b.len() - 1];
        let prev_sign = b[b.len() - 2] & 0x80;
        if (last == 0 && prev_sign == 0) || (last == 0xff && prev_sign != 0) {
            b.pop();
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &Py) -> Vec<u8> {
        let p = dump(v);
        p.pkl[2..p.pkl.len() - 1].to_vec()
    }

    #[test]
    fn ints_take_the_shortest_form() {
        assert_eq!(bytes(&Py::Int(5)), b"K\x05");
        assert_eq!(bytes(&Py::Int(300)), b"M\x2c\x01");
        assert_eq!(bytes(&Py::Int(-1)), b"J\xff\xff\xff\xff");
        assert_eq!(
            bytes(&Py::Int(1 << 40)),
            b"\x8a\x06\x00\x00\x00\x00\x00\x01"
        );
        assert_eq!(
            bytes(&Py::Int(-(1 << 40))),
            b"\x8a\x06\x00\x00\x00\x00\x00\xff"
        );
    }

    #[test]
    fn floats_are_big_endian() {
        assert_eq!(bytes(&Py::Float(1.0)), b"G\x3f\xf0\x00\x00\x00\x00\x00\x00");
    }

    #[test]
    fn containers_follow_cpython() {
        assert_eq!(bytes(&Py::Tuple(vec![])), b")");
        assert_eq!(bytes(&Py::ints(&[1, 2])), b"K\x01K\x02\x86");
        assert_eq!(bytes(&Py::ints(&[1, 2, 3, 4])), b"(K\x01K\x02K\x03K\x04t");
        assert_eq!(bytes(&Py::List(vec![Py::None])), b"]Na");
        assert_eq!(
            bytes(&Py::str_dict(vec![("a", Py::Bool(true))])),
            b"}X\x01\x00\x00\x00a\x88s"
        );
        assert_eq!(bytes(&Py::EmptySet), b"c__builtin__\nset\nq\x00]\x85R");
    }

    #[test]
    fn shared_objects_are_memoised() {
        let o = Rc::new(Object {
            module: "torch.nn.modules.activation",
            class: "SiLU",
            state: vec![("inplace".into(), Py::Bool(false))],
        });
        let p = dump(&Py::List(vec![Py::Object(o.clone()), Py::Object(o)]));
        let n_newobj = p.pkl.iter().filter(|&&b| b == 0x81).count();
        assert_eq!(n_newobj, 1);
        assert!(
            p.pkl.windows(2).any(|w| w == b"h\x01"),
            "BINGET of the object"
        );
    }

    #[test]
    fn tensors_get_storage_keys_in_order() {
        let b = |n| {
            Rc::new(Blob {
                kind: StorageKind::Half,
                shape: vec![n],
                bytes: vec![0; 2 * n as usize],
            })
        };
        let p = dump(&Py::List(vec![Py::Tensor(b(2)), Py::Param(b(3))]));
        assert_eq!(p.storages.len(), 2);
        assert_eq!(p.storages[1].numel(), 3);
        assert!(p.globals.contains(&"torch HalfStorage".to_string()));
    }
}
