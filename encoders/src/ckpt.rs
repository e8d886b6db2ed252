//! A reader for PyTorch zip checkpoints (`torch.save`, Lightning `.ckpt`) that needs none of the
//! Python classes pickled in them.
//!
//! Why hand-written: a Lightning checkpoint's `hyper_parameters` pickles arbitrary objects (the
//! AstroCLIP file pickles its encoder modules, whose state includes Python `set`s and custom
//! classes). General pickle readers either need those classes or reject what they do not know;
//! this one runs the pickle program with every unknown callable turned into an opaque object,
//! recognises only what tensors need (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
//! storages by persistent id, `collections.OrderedDict`) and then reads just the `state_dict`
//! entry's tensors from the archive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use crate::error::{EncoderError, Result};
use crate::tensors::{Dtype, RawTensor};

#[derive(Debug, Clone)]
enum Value {
    None,
    /// A bool, float or bytes value (never needed, so not kept).
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Rc<(String, String)>),
    /// Anything built by an unknown callable: kept opaque.
    Object,
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

#[derive(Debug)]
struct StorageRef {
    key: String,
    dtype: String,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

enum Item {
    Mark,
    Value(Value),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Value>,
}

type PResult<T> = std::result::Result<T, String>;

impl<'a> Machine<'a> {
    fn byte(&mut self) -> PResult<u8> {
        let b = *self.data.get(self.pos).ok_or("truncated pickle")?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or("bad length")?;
        let s = self.data.get(self.pos..end).ok_or("truncated pickle")?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(
            self.bytes(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn line(&mut self) -> PResult<String> {
        let start = self.pos;
        while self.byte()? != b'\n' {}
        Ok(String::from_utf8_lossy(&self.data[start..self.pos - 1]).into_owned())
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Value(v));
    }

    fn pop(&mut self) -> PResult<Value> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => Err("unexpected mark".into()),
            None => Err("stack underflow".into()),
        }
    }

    fn top(&self) -> PResult<Value> {
        match self.stack.last() {
            Some(Item::Value(v)) => Ok(v.clone()),
            _ => Err("no value on the stack".into()),
        }
    }

    fn pop_mark(&mut self) -> PResult<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Item::Value(v)) => out.push(v),
                Some(Item::Mark) => break,
                None => return Err("missing mark".into()),
            }
        }
        out.reverse();
        Ok(out)
    }

    fn set_items(&mut self, items: Vec<Value>) -> PResult<()> {
        let target = self.top()?;
        if let Value::Dict(d) = target {
            let mut d = d.borrow_mut();
            for pair in items.chunks(2) {
                if let [k, v] = pair {
                    d.push((k.clone(), v.clone()));
                }
            }
        }
        // SETITEMS on an opaque object (a dict subclass): the values are not needed.
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> PResult<()> {
        if let Value::List(l) = self.top()? {
            l.borrow_mut().extend(items);
        }
        Ok(())
    }

    fn run(mut self) -> PResult<Value> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    self.byte()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.stack.push(Item::Mark),
                b'0' => {
                    self.stack.pop().ok_or("stack underflow")?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.push(v);
                }
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Scalar),
                0x89 => self.push(Value::Scalar),
                b'J' => {
                    let v = i32::from_le_bytes(self.bytes(4)?.try_into().expect("4")) as i64;
                    self.push(Value::Int(v));
                }
                b'K' => {
                    let v = self.byte()? as i64;
                    self.push(Value::Int(v));
                }
                b'M' => {
                    let b = self.bytes(2)?;
                    self.push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement
                    let n = if op == 0x8a {
                        self.byte()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    let b = self.bytes(n)?;
                    let mut v: i64 = 0;
                    for (i, byte) in b.iter().enumerate().take(8) {
                        v |= (*byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v));
                }
                b'I' => {
                    let l = self.line()?;
                    let v = match l.as_str() {
                        "01" => Value::Scalar,
                        "00" => Value::Scalar,
                        _ => Value::Int(l.trim().parse().map_err(|_| "bad INT")?),
                    };
                    self.push(v);
                }
                b'L' => {
                    let l = self.line()?;
                    self.push(Value::Int(l.trim_end_matches('L').parse().unwrap_or(0)));
                }
                b'G' => {
                    self.bytes(8)?; // BINFLOAT (never needed)
                    self.push(Value::Scalar);
                }
                b'F' => {
                    self.line()?; // FLOAT (never needed)
                    self.push(Value::Scalar);
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as usize,
                        0x8c => self.byte()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let s = String::from_utf8_lossy(self.bytes(n)?).into_owned();
                    self.push(Value::Str(s));
                }
                b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'T' | b'B' => self.u32()? as usize,
                        b'U' | b'C' => self.byte()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let b = self.bytes(n)?;
                    self.push(if matches!(op, b'T' | b'U') {
                        Value::Str(String::from_utf8_lossy(b).into_owned())
                    } else {
                        Value::Scalar
                    });
                }
                b'S' | b'V' => {
                    let l = self.line()?;
                    self.push(Value::Str(l));
                }
                b')' => self.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)));
                }
                b']' => self.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'}' => self.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter_map(|p| match p {
                            [k, v] => Some((k.clone(), v.clone())),
                            _ => None,
                        })
                        .collect();
                    self.push(Value::Dict(Rc::new(RefCell::new(pairs))));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                0x8f => self.push(Value::Object), // EMPTY_SET
                0x90 => {
                    self.pop_mark()?; // ADDITEMS
                }
                0x91 => {
                    self.pop_mark()?; // FROZENSET
                    self.push(Value::Object);
                }
                b'p' => {
                    let idx = self.line()?.trim().parse().map_err(|_| "bad PUT")?;
                    let v = self.top()?;
                    self.memo.insert(idx, v);
                }
                b'q' => {
                    let idx = self.byte()? as u32;
                    let v = self.top()?;
                    self.memo.insert(idx, v);
                }
                b'r' => {
                    let idx = self.u32()?;
                    let v = self.top()?;
                    self.memo.insert(idx, v);
                }
                0x94 => {
                    let idx = self.memo.len() as u32;
                    let v = self.top()?;
                    self.memo.insert(idx, v);
                }
                b'g' | b'h' | b'j' => {
                    let idx = match op {
                        b'g' => self.line()?.trim().parse().map_err(|_| "bad GET")?,
                        b'h' => self.byte()? as u32,
                        _ => self.u32()?,
                    };
                    let v = self.memo.get(&idx).cloned().ok_or("memo miss")?;
                    self.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(Rc::new((module, name))));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(Rc::new((m, n)))),
                        _ => return Err("bad STACK_GLOBAL".into()),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.push(v);
                }
                0x81 => {
                    self.pop()?; // NEWOBJ args
                    self.pop()?; // class
                    self.push(Value::Object);
                }
                0x92 => {
                    self.pop()?; // NEWOBJ_EX kwargs
                    self.pop()?; // args
                    self.pop()?; // class
                    self.push(Value::Object);
                }
                b'b' => {
                    let state = self.pop()?;
                    // BUILD: only a dict updated from a dict matters (OrderedDict `_metadata`
                    // is an attribute, not an item, so it is dropped here).
                    let _ = state;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_load(pid)?;
                    self.push(v);
                }
                b'P' => return Err("text persistent ids are not supported".into()),
                other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
            }
        }
    }
}

fn as_usize_list(v: &Value) -> PResult<Vec<usize>> {
    match v {
        Value::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err("bad size/stride".to_string()),
            })
            .collect(),
        _ => Err("expected a tuple of ints".into()),
    }
}

fn reduce(callable: Value, args: Value) -> PResult<Value> {
    let Value::Global(g) = &callable else {
        return Ok(Value::Object);
    };
    let args = match args {
        Value::Tuple(t) => t,
        _ => return Ok(Value::Object),
    };
    match (g.0.as_str(), g.1.as_str()) {
        ("collections", "OrderedDict") => Ok(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            let storage = match args.first() {
                Some(Value::Storage(s)) => s.clone(),
                _ => return Err("tensor without storage".into()),
            };
            let offset = match args.get(1) {
                Some(Value::Int(n)) => *n as usize,
                _ => return Err("bad storage offset".into()),
            };
            let size = as_usize_list(args.get(2).ok_or("missing size")?)?;
            let stride = as_usize_list(args.get(3).ok_or("missing stride")?)?;
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage,
                offset,
                size,
                stride,
            })))
        }
        ("torch._utils", "_rebuild_parameter")
        | ("torch._utils", "_rebuild_parameter_with_state") => {
            Ok(args.first().cloned().unwrap_or(Value::Object))
        }
        ("torch._tensor", "_rebuild_from_type_v2") => {
            // (func, type, args, state): apply func to args.
            match (args.first(), args.get(2)) {
                (Some(f), Some(a)) => reduce(f.clone(), a.clone()),
                _ => Ok(Value::Object),
            }
        }
        _ => Ok(Value::Object),
    }
}

fn persistent_load(pid: Value) -> PResult<Value> {
    let Value::Tuple(t) = pid else {
        return Err("bad persistent id".into());
    };
    match (t.first(), t.get(1), t.get(2)) {
        (Some(Value::Str(kind)), Some(Value::Global(ty)), Some(Value::Str(key)))
            if kind == "storage" =>
        {
            Ok(Value::Storage(Rc::new(StorageRef {
                key: key.clone(),
                dtype: ty.1.clone(),
            })))
        }
        _ => Err("unsupported persistent id".into()),
    }
}

/// The element type of a pickled storage class (`torch.FloatStorage`, …).
fn storage_dtype(storage: &str) -> Option<Dtype> {
    Some(match storage {
        "FloatStorage" => Dtype::F32,
        "DoubleStorage" => Dtype::F64,
        "HalfStorage" => Dtype::F16,
        "BFloat16Storage" => Dtype::BF16,
        "LongStorage" => Dtype::I64,
        "IntStorage" => Dtype::I32,
        "ShortStorage" => Dtype::I16,
        "CharStorage" => Dtype::I8,
        "ByteStorage" | "BoolStorage" => Dtype::U8,
        _ => return None,
    })
}

/// Reads the tensors of a zip-format PyTorch checkpoint: the `state_dict` entry of a Lightning
/// checkpoint, or the top-level dict of a plain `torch.save(state_dict)` file.
pub fn read_state_dict(path: &Path) -> Result<HashMap<String, RawTensor>> {
    let err = |m: String| EncoderError::format(path, m);
    let file = std::fs::File::open(path).map_err(|e| EncoderError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| err(format!("not a zip-format PyTorch checkpoint: {e}")))?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| err("no data.pkl in the archive".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut pkl).map_err(Into::into))
        .map_err(|e| err(format!("cannot read {pkl_name}: {e}")))?;
    let machine = Machine {
        data: &pkl,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    let root = machine.run().map_err(|m| err(format!("pickle: {m}")))?;
    let Value::Dict(root) = root else {
        return Err(err("the checkpoint is not a dict".into()));
    };
    let root = root.borrow();
    let state = root
        .iter()
        .find(|(k, _)| matches!(k, Value::Str(s) if s == "state_dict"))
        .map(|(_, v)| v.clone());
    let entries: Vec<(Value, Value)> = match state {
        Some(Value::Dict(d)) => d.borrow().clone(),
        Some(_) => return Err(err("`state_dict` is not a dict".into())),
        None => root.clone(),
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = HashMap::new();
    for (k, v) in entries {
        let Value::Str(key) = k else {
            return Err(err("a state_dict key is not a string".into()));
        };
        let Value::Tensor(t) = v else {
            return Err(err(format!("state_dict entry {key:?} is not a tensor")));
        };
        let dtype = storage_dtype(&t.storage.dtype).ok_or_else(|| EncoderError::TensorDtype {
            key: key.clone(),
            dtype: t.storage.dtype.clone(),
        })?;
        let size = dtype.size();
        if !storages.contains_key(&t.storage.key) {
            let name = format!("{prefix}data/{}", t.storage.key);
            let mut buf = Vec::new();
            zip.by_name(&name)
                .and_then(|mut f| f.read_to_end(&mut buf).map_err(Into::into))
                .map_err(|e| err(format!("cannot read {name}: {e}")))?;
            storages.insert(t.storage.key.clone(), buf);
        }
        let bytes = &storages[&t.storage.key];
        let numel: usize = t.size.iter().product();
        let mut data = Vec::with_capacity(numel);
        let mut index = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let elem = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            let b = bytes
                .get(elem * size..(elem + 1) * size)
                .ok_or_else(|| err(format!("tensor {key:?} runs past its storage")))?;
            data.push(dtype.decode(b));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.size[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        out.insert(
            key,
            RawTensor {
                shape: t.size.clone(),
                data,
            },
        );
    }
    Ok(out)
}
