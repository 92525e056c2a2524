//! A bounded reader of the pickles `torch.save` writes (`data.pkl`), from bytes in memory.
//!
//! General pickle readers are easy to turn against their caller: a pickle nested a million
//! lists deep overflows a recursive reader's stack (and a recursive `Drop`), and a few hundred
//! bytes that keep re-reading and re-combining memo entries grow exponentially in a reader that
//! copies an object on every memo read. This one cannot:
//!
//! - objects live in one arena and refer to each other by index; a memo read pushes an index,
//!   it never copies, and nothing (parsing, inspection, dropping) recurses over the objects;
//! - every object and every container slot counts against [`MAX_PICKLE_OBJECTS`], memo entries
//!   against [`MAX_PICKLE_MEMO`], the stack against [`MAX_PICKLE_STACK`], container and `MARK`
//!   nesting against [`MAX_PICKLE_DEPTH`];
//! - every declared length (strings, bytes, big integers) is checked against the bytes left
//!   before anything is allocated; each opcode consumes at least one byte, so the work is
//!   linear in the pickle's length.
//!
//! Only the data-building opcodes of protocols 2-5 are understood (what PyTorch writes, and
//! more). Nothing is ever imported or called: `GLOBAL` and `REDUCE` build inert descriptions
//! (a class name, a call with its arguments) that the caller inspects.

use crate::error::ReadError;
use crate::limits::{MAX_PICKLE_DEPTH, MAX_PICKLE_MEMO, MAX_PICKLE_OBJECTS, MAX_PICKLE_STACK};
use std::collections::HashMap;

/// Index of an object in a [`Pickle`].
pub(crate) type Id = usize;

/// One unpickled object. Containers hold the indices of their items.
#[derive(Debug)]
pub(crate) enum Value {
    None,
    /// `True` or `False` (the value is not needed by any reader here, so it is not kept).
    Bool,
    Int(i64),
    /// An integer that does not fit in 64 bits (its value is not kept).
    BigInt,
    /// A float (its value is not kept).
    Float,
    Str(String),
    /// A `bytes`/`bytearray`/protocol-0 string (the contents are not kept).
    Bytes,
    Tuple(Vec<Id>),
    /// A list (or a set, which PyTorch never writes but costs nothing to read).
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A class or function reference (`GLOBAL`, `STACK_GLOBAL`): never resolved.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)` (`REDUCE`, `NEWOBJ`): never called. `collections.OrderedDict()` is
    /// read as an empty [`Value::Dict`] instead, so that `SETITEMS` can fill it.
    Call {
        callable: Id,
        args: Id,
    },
    /// A persistent id (`BINPERSID`): PyTorch's reference to a tensor storage.
    PersistentId(Id),
}

/// An unpickled object graph and its root.
pub(crate) struct Pickle {
    values: Vec<Value>,
    root: Id,
}

impl Pickle {
    /// The object at `id` (`Value::None` for an id this pickle does not have, which the
    /// indices handed out by this module never are).
    pub(crate) fn get(&self, id: Id) -> &Value {
        self.values.get(id).unwrap_or(&Value::None)
    }

    /// The object `STOP` returned.
    pub(crate) fn root(&self) -> Id {
        self.root
    }
}

fn corrupt(m: impl Into<String>) -> ReadError {
    ReadError::Corrupt(m.into())
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    values: Vec<Value>,
    depth: Vec<usize>,
    /// Objects plus container slots created so far.
    objects: usize,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let input: &'a [u8] = self.input;
        let end = self.pos.checked_add(n).filter(|&e| e <= input.len());
        match end {
            Some(end) => {
                let b = &input[self.pos..end];
                self.pos = end;
                Ok(b)
            }
            None => Err(corrupt(format!(
                "truncated: {n} bytes wanted at byte {} of {}",
                self.pos,
                input.len()
            ))),
        }
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.arr::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    /// A length given as a 64-bit count: must fit in the bytes left (checked by `take`).
    fn len64(&mut self) -> Result<usize, ReadError> {
        let n = u64::from_le_bytes(self.arr()?);
        usize::try_from(n).map_err(|_| corrupt(format!("declared length {n} is impossible")))
    }

    /// A `\n`-terminated line (protocol-0 style arguments of `GLOBAL`).
    fn line(&mut self) -> Result<&'a str, ReadError> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| corrupt("unterminated line"))?;
        let bytes = self.take(n + 1)?;
        std::str::from_utf8(&bytes[..n]).map_err(|_| corrupt("a line is not UTF-8"))
    }

    fn count(&mut self, n: usize) -> Result<(), ReadError> {
        self.objects = self.objects.saturating_add(n);
        if self.objects > MAX_PICKLE_OBJECTS {
            return Err(ReadError::limit(
                "number of pickle objects",
                MAX_PICKLE_OBJECTS,
            ));
        }
        Ok(())
    }

    fn depth_of(&self, id: Id) -> usize {
        self.depth.get(id).copied().unwrap_or(0)
    }

    fn check_depth(d: usize) -> Result<usize, ReadError> {
        if d > MAX_PICKLE_DEPTH {
            Err(ReadError::limit(
                format!("pickle nesting depth {d}"),
                MAX_PICKLE_DEPTH,
            ))
        } else {
            Ok(d)
        }
    }

    /// Adds an object built from `children` and returns its id.
    fn alloc(&mut self, v: Value, children: &[Id]) -> Result<Id, ReadError> {
        self.count(1 + children.len())?;
        let d = children
            .iter()
            .map(|&c| self.depth_of(c) + 1)
            .max()
            .unwrap_or(0);
        let d = Self::check_depth(d)?;
        self.values.push(v);
        self.depth.push(d);
        Ok(self.values.len() - 1)
    }

    fn push(&mut self, id: Id) -> Result<(), ReadError> {
        if self.stack.len() >= MAX_PICKLE_STACK {
            return Err(ReadError::limit("pickle stack size", MAX_PICKLE_STACK));
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_new(&mut self, v: Value, children: &[Id]) -> Result<(), ReadError> {
        let id = self.alloc(v, children)?;
        self.push(id)
    }

    fn pop(&mut self) -> Result<Id, ReadError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(corrupt("pops across a MARK"));
        }
        self.stack
            .pop()
            .ok_or_else(|| corrupt("pops an empty stack"))
    }

    fn top(&self) -> Result<Id, ReadError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(corrupt("reads across a MARK"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| corrupt("needs a value on an empty stack"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, ReadError> {
        let m = self.marks.pop().ok_or_else(|| corrupt("no MARK"))?;
        if m > self.stack.len() {
            return Err(corrupt("MARK above the stack"));
        }
        Ok(self.stack.split_off(m))
    }

    /// Adds `items` to the container `target`, updating its depth.
    fn extend(&mut self, target: Id, items: Vec<Id>, what: &str) -> Result<(), ReadError> {
        self.count(items.len())?;
        let d = items
            .iter()
            .map(|&c| self.depth_of(c) + 1)
            .max()
            .unwrap_or(0)
            .max(self.depth_of(target));
        let d = Self::check_depth(d)?;
        if let Some(slot) = self.depth.get_mut(target) {
            *slot = d;
        }
        match (self.values.get_mut(target), what) {
            (Some(Value::List(v)), "list") => v.extend(items),
            (Some(Value::Dict(v)), "dict") => {
                if !items.len().is_multiple_of(2) {
                    return Err(corrupt("SETITEMS with an odd number of values"));
                }
                v.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
            }
            _ => {
                return Err(corrupt(format!(
                    "adds items to something that is not a {what}"
                )))
            }
        }
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), ReadError> {
        let v = self.top()?;
        if !self.memo.contains_key(&key) && self.memo.len() >= MAX_PICKLE_MEMO {
            return Err(ReadError::limit("pickle memo size", MAX_PICKLE_MEMO));
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), ReadError> {
        let v = *self
            .memo
            .get(&key)
            .ok_or_else(|| corrupt(format!("memo entry {key} is read before it is written")))?;
        self.push(v)
    }

    fn str_value(&mut self, n: usize) -> Result<(), ReadError> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| corrupt("a string is not UTF-8"))?;
        self.push_new(Value::Str(s.to_string()), &[])
    }

    fn bytes_value(&mut self, n: usize) -> Result<(), ReadError> {
        self.take(n)?;
        self.push_new(Value::Bytes, &[])
    }

    /// Two's-complement little-endian integer of `n` bytes (`LONG1`/`LONG4`).
    fn long_value(&mut self, n: usize) -> Result<(), ReadError> {
        let b = self.take(n)?;
        let v = if n == 0 {
            Value::Int(0)
        } else if n <= 8 {
            let fill = if b[n - 1] & 0x80 != 0 { 0xFF } else { 0 };
            let mut a = [fill; 8];
            a[..n].copy_from_slice(b);
            Value::Int(i64::from_le_bytes(a))
        } else {
            Value::BigInt
        };
        self.push_new(v, &[])
    }

    /// Runs opcodes until `STOP`.
    fn run(&mut self) -> Result<Id, ReadError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            self.step(op)
                .map_err(|e| e.context(&format!("opcode {op:#04x} at byte {at}")))?;
            if op == b'.' {
                return self.pop();
            }
        }
    }

    fn step(&mut self, op: u8) -> Result<(), ReadError> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(ReadError::Unsupported(format!("pickle protocol {proto}")));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint
            }
            b'.' => {} // STOP: handled by `run`
            b'(' => {
                if self.marks.len() >= MAX_PICKLE_DEPTH {
                    return Err(ReadError::limit("number of open MARKs", MAX_PICKLE_DEPTH));
                }
                self.marks.push(self.stack.len());
            }
            b'0' => {
                // POP: the top value, or the top MARK when nothing lies above it.
                if self.marks.last().is_some_and(|&m| m == self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?;
                self.push(v)?;
            }
            b'N' => self.push_new(Value::None, &[])?,
            0x88 | 0x89 => self.push_new(Value::Bool, &[])?,
            b'J' => {
                let v = i32::from_le_bytes(self.arr()?);
                self.push_new(Value::Int(i64::from(v)), &[])?
            }
            b'K' => {
                let v = self.u8()?;
                self.push_new(Value::Int(i64::from(v)), &[])?
            }
            b'M' => {
                let v = u16::from_le_bytes(self.arr()?);
                self.push_new(Value::Int(i64::from(v)), &[])?
            }
            0x8a => {
                let n = usize::from(self.u8()?);
                self.long_value(n)?
            }
            0x8b => {
                let n = i32::from_le_bytes(self.arr()?);
                let n = usize::try_from(n).map_err(|_| corrupt("negative LONG4 length"))?;
                self.long_value(n)?
            }
            b'G' => {
                self.take(8)?;
                self.push_new(Value::Float, &[])?
            }
            b'X' => {
                let n = self.u32()? as usize;
                self.str_value(n)?
            }
            0x8c => {
                let n = usize::from(self.u8()?);
                self.str_value(n)?
            }
            0x8d => {
                let n = self.len64()?;
                self.str_value(n)?
            }
            b'B' => {
                let n = self.u32()? as usize;
                self.bytes_value(n)?
            }
            b'C' | b'U' => {
                let n = usize::from(self.u8()?);
                self.bytes_value(n)?
            }
            b'T' => {
                let n = i32::from_le_bytes(self.arr()?);
                let n = usize::try_from(n).map_err(|_| corrupt("negative BINSTRING length"))?;
                self.bytes_value(n)?
            }
            0x8e | 0x96 => {
                let n = self.len64()?;
                self.bytes_value(n)?
            }
            b')' => self.push_new(Value::Tuple(Vec::new()), &[])?,
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push_new(Value::Tuple(items.clone()), &items)?
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push_new(Value::Tuple(items.clone()), &items)?
            }
            b']' | 0x8f => self.push_new(Value::List(Vec::new()), &[])?,
            b'l' | 0x91 => {
                let items = self.pop_mark()?;
                self.push_new(Value::List(items.clone()), &items)?
            }
            b'a' => {
                let v = self.pop()?;
                let target = self.top()?;
                self.extend(target, vec![v], "list")?
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.extend(target, items, "list")?
            }
            b'}' => self.push_new(Value::Dict(Vec::new()), &[])?,
            b'd' => {
                let items = self.pop_mark()?;
                if !items.len().is_multiple_of(2) {
                    return Err(corrupt("DICT with an odd number of values"));
                }
                let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
                self.push_new(Value::Dict(pairs), &items)?
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let target = self.top()?;
                self.extend(target, vec![k, v], "dict")?
            }
            b'u' => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.extend(target, items, "dict")?
            }
            b'c' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.push_new(Value::Global { module, name }, &[])?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (self.values.get(module), self.values.get(name)) {
                    (Some(Value::Str(m)), Some(Value::Str(n))) => {
                        let v = Value::Global {
                            module: m.clone(),
                            name: n.clone(),
                        };
                        self.push_new(v, &[])?
                    }
                    _ => return Err(corrupt("STACK_GLOBAL of non-strings")),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let ordered_dict = matches!(
                    self.values.get(callable),
                    Some(Value::Global { module, name })
                        if module == "collections" && name == "OrderedDict"
                ) && matches!(self.values.get(args), Some(Value::Tuple(a)) if a.is_empty());
                if ordered_dict {
                    self.push_new(Value::Dict(Vec::new()), &[])?
                } else {
                    self.push_new(Value::Call { callable, args }, &[callable, args])?
                }
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let callable = self.pop()?;
                self.push_new(Value::Call { callable, args }, &[callable, args])?
            }
            b'b' => {
                // BUILD: sets the state of the object below; attributes (such as a state
                // dict's `_metadata`) are not needed.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push_new(Value::PersistentId(pid), &[pid])?
            }
            b'q' => {
                let k = self.u8()?;
                self.memo_put(u32::from(k))?
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k)?
            }
            0x94 => {
                let k = u32::try_from(self.memo.len())
                    .map_err(|_| ReadError::limit("pickle memo size", MAX_PICKLE_MEMO))?;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()?;
                self.memo_get(u32::from(k))?
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k)?
            }
            other => {
                return Err(ReadError::Unsupported(format!(
                    "pickle opcode {other:#04x} ({:?})",
                    char::from(other)
                )))
            }
        }
        Ok(())
    }
}

/// Reads one pickle (up to its `STOP`; trailing bytes are ignored, as Python does).
pub(crate) fn read(input: &[u8]) -> Result<Pickle, ReadError> {
    let mut m = Machine {
        input,
        pos: 0,
        values: Vec::new(),
        depth: Vec::new(),
        objects: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    Ok(Pickle {
        values: m.values,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> ReadError {
        match read(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn reads_containers_and_scalars() {
        // {'a': [1, -2, 3.5, True, None], 'b': (b'xy', 2**70)}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend_from_slice(b"X\x01\x00\x00\x00a");
        p.extend_from_slice(b"](K\x01J\xfe\xff\xff\xffG\x40\x0c\x00\x00\x00\x00\x00\x00\x88Ne");
        p.extend_from_slice(b"X\x01\x00\x00\x00b");
        p.extend_from_slice(b"C\x02xy\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40\x86");
        p.extend_from_slice(b"u.");
        let pk = read(&p).unwrap();
        let Value::Dict(entries) = pk.get(pk.root()) else {
            panic!("not a dict")
        };
        assert_eq!(entries.len(), 2);
        let Value::List(items) = pk.get(entries[0].1) else {
            panic!("not a list")
        };
        let got: Vec<String> = items.iter().map(|&i| format!("{:?}", pk.get(i))).collect();
        assert_eq!(got, ["Int(1)", "Int(-2)", "Float", "Bool", "None"]);
        let Value::Tuple(t) = pk.get(entries[1].1) else {
            panic!("not a tuple")
        };
        assert!(matches!(pk.get(t[0]), Value::Bytes));
        assert!(matches!(pk.get(t[1]), Value::BigInt));
    }

    #[test]
    fn lengths_past_the_end_are_errors_before_allocation() {
        for p in [
            &b"X\xff\xff\xff\xff"[..],
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x8e\x00\x00\x00\x00\x00\x00\x00\x80",
            b"\x8b\xff\xff\xff\x7f",
            b"\x8b\x00\x00\x00\x80",
            b"B\x00\x00\x00\x40",
        ] {
            assert!(matches!(err(p), ReadError::Corrupt(_)), "{p:?}");
        }
    }

    #[test]
    fn malformed_stacks_are_errors() {
        for p in [
            &b"."[..],
            b"(.",
            b"a.",
            b"K\x01a.",
            b"K\x01(K\x02u.",
            b"h\x00.",
            b"\x85.",
            b"(\x85.",
            b"N",
            b"\xff",
        ] {
            assert!(read(p).is_err(), "{p:?}");
        }
        assert!(matches!(err(b"I1\n."), ReadError::Unsupported(_)));
    }

    #[test]
    fn memo_reads_share_instead_of_copying() {
        // l = []; then 60 times: l = (l, l). A copying reader would build 2^60 objects.
        let mut p = vec![b']', b'q', 0];
        for _ in 0..60 {
            p.extend_from_slice(b"0h\x00h\x00\x86q\x00");
        }
        p.push(b'.');
        let pk = read(&p).unwrap();
        assert!(pk.values.len() < 200);
    }
}
