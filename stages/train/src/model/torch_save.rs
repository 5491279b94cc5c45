//! Reading `torch.save(model.state_dict())` files (torchvision's `resnet18-f37072fd.pth`) without Python.
//!
//! The file is a zip archive of a pickle plus one raw record per storage. libtorch's own readers cannot be used:
//! `Tensor::loadz_multi` (`torch::jit::_load_parameters`, like `torch::pickle_load`) reads the
//! `collections.OrderedDict` that every `state_dict()` is as `None` and fails with "Expected GenericDict but
//! got None". The pickle is interpreted, never executed: only the few globals a `state_dict` uses are known,
//! any other stays an inert name.

use anyhow::{bail, ensure, Context};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// Decodes a `torch.save` zip archive holding a dict of tensors (a `state_dict`), in the dict's order.
pub(crate) fn decode_torch_save(bytes: &[u8]) -> anyhow::Result<Vec<(String, Tensor)>> {
    let archive = Archive::parse(bytes)?;
    let (root, pickle) = archive.data_pkl()?;
    if let Some(order) = archive.records.get(&format!("{root}/byteorder")) {
        ensure!(
            *order == b"little",
            "stored in {} byte order; only little-endian files are read",
            String::from_utf8_lossy(order)
        );
    }
    let top = unpickle(pickle).context("decoding data.pkl")?;
    let Pickled::Dict(items) = top else {
        let torchscript = archive
            .records
            .contains_key(&format!("{root}/constants.pkl"));
        bail!(
            "holds {} instead of a dict of tensors{}",
            top.describe(),
            if torchscript {
                " (a TorchScript module: save its `state_dict()` instead)"
            } else {
                ""
            }
        );
    };
    let mut tensors = Vec::new();
    let mut others = Vec::new();
    for (key, value) in items {
        let name = match key {
            Pickled::Str(name) => name,
            other => other.describe(),
        };
        let Pickled::Tensor(t) = value else {
            others.push(name);
            continue;
        };
        let record = format!("{root}/data/{}", t.key);
        let Some(data) = archive.records.get(&record) else {
            if archive.truncated {
                bail!("`{name}`: its data `{record}` is cut off: the file is truncated");
            }
            bail!("`{name}`: its data `{record}` is not in the archive");
        };
        let tensor = t.build(data).with_context(|| format!("`{name}`"))?;
        tensors.push((name, tensor));
    }
    if tensors.is_empty() {
        bail!(
            "holds no tensors at its top level (keys: {}): save the `state_dict()` itself",
            if others.is_empty() {
                "none".to_string()
            } else {
                others.join(", ")
            }
        );
    }
    Ok(tensors)
}

/// The stored records of a zip archive by name. `torch.save` writes them uncompressed.
struct Archive<'a> {
    records: HashMap<String, &'a [u8]>,
    /// No central directory at the end: the records were found by walking the local headers, and the
    /// ones cut off are absent.
    truncated: bool,
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END_OF_DIRECTORY: u32 = 0x0606_4b50;

impl<'a> Archive<'a> {
    fn parse(bytes: &'a [u8]) -> anyhow::Result<Self> {
        if !bytes.starts_with(b"PK\x03\x04") {
            if bytes.starts_with(&[0x80, 0x02]) {
                bail!(
                    "the legacy torch.save format (torch < 1.6) is not read: re-save the file with a recent \
                     torch (`torch.save(torch.load(f), f)`)"
                );
            }
            bail!(
                "not a zip archive ({} bytes, starting {:02x?})",
                bytes.len(),
                &bytes[..bytes.len().min(4)]
            );
        }
        match find_end_of_directory(bytes) {
            Some(end) => Self::from_directory(bytes, end),
            None => Self::from_local_headers(bytes),
        }
    }

    /// Reads the central directory that the end-of-directory record at `end` points to.
    fn from_directory(bytes: &'a [u8], end: usize) -> anyhow::Result<Self> {
        let mut entries = u64::from(le16(bytes, end + 10)?);
        let mut size = u64::from(le32(bytes, end + 12)?);
        let mut offset = u64::from(le32(bytes, end + 16)?);
        if end >= 20 && le32(bytes, end - 20)? == ZIP64_LOCATOR {
            let at = to_usize(le64(bytes, end - 12)?)?;
            ensure!(
                le32(bytes, at)? == ZIP64_END_OF_DIRECTORY,
                "corrupt zip64 end of directory"
            );
            entries = le64(bytes, at + 32)?;
            size = le64(bytes, at + 40)?;
            offset = le64(bytes, at + 48)?;
        }
        let directory = slice(bytes, to_usize(offset)?, to_usize(size)?)
            .context("the zip directory lies outside the file")?;
        let mut records = HashMap::new();
        let mut at = 0;
        for _ in 0..entries {
            ensure!(
                le32(directory, at)? == CENTRAL_HEADER,
                "corrupt zip directory"
            );
            let method = le16(directory, at + 10)?;
            let mut len = u64::from(le32(directory, at + 20)?);
            let name_len = usize::from(le16(directory, at + 28)?);
            let extra_len = usize::from(le16(directory, at + 30)?);
            let comment_len = usize::from(le16(directory, at + 32)?);
            let mut local = u64::from(le32(directory, at + 42)?);
            let name = slice(directory, at + 46, name_len).context("corrupt zip directory")?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra =
                slice(directory, at + 46 + name_len, extra_len).context("corrupt zip directory")?;
            // Sizes and offsets past 4 GiB move to the zip64 extra field, in this order.
            let mut wide = zip64_fields(extra);
            if le32(directory, at + 24)? == u32::MAX {
                wide.next();
            }
            if len == u64::from(u32::MAX) {
                len = wide.next().context("corrupt zip64 extra field")?;
            }
            if local == u64::from(u32::MAX) {
                local = wide.next().context("corrupt zip64 extra field")?;
            }
            ensure!(
                method == 0,
                "record `{name}` is compressed (zip method {method}); torch.save stores records as they are"
            );
            let local = to_usize(local)?;
            ensure!(
                le32(bytes, local)? == LOCAL_HEADER,
                "corrupt zip: no local header for `{name}`"
            );
            let start = local
                + 30
                + usize::from(le16(bytes, local + 26)?)
                + usize::from(le16(bytes, local + 28)?);
            let data = slice(bytes, start, to_usize(len)?)
                .with_context(|| format!("record `{name}` lies outside the file"))?;
            records.insert(name, data);
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(Self {
            records,
            truncated: false,
        })
    }

    /// Recovers the complete records in front of the cut of a truncated archive.
    fn from_local_headers(bytes: &'a [u8]) -> anyhow::Result<Self> {
        let mut records = HashMap::new();
        let mut at = 0;
        while le32(bytes, at).ok() == Some(LOCAL_HEADER) {
            let (Ok(flags), Ok(len), Ok(name_len), Ok(extra_len)) = (
                le16(bytes, at + 6),
                le32(bytes, at + 18),
                le16(bytes, at + 26),
                le16(bytes, at + 28),
            ) else {
                break;
            };
            let name_at = at + 30;
            let data_at = name_at + usize::from(name_len) + usize::from(extra_len);
            // torch.save gives the size only in a descriptor after the data (flag bit 3).
            let (len, next) = if flags & 8 != 0 {
                match descriptor(bytes, data_at) {
                    Some(found) => found,
                    None => break,
                }
            } else if len == u32::MAX {
                break;
            } else {
                (len as usize, data_at + len as usize)
            };
            let (Some(name), Some(data)) = (
                slice(bytes, name_at, usize::from(name_len)),
                slice(bytes, data_at, len),
            ) else {
                break;
            };
            records.insert(String::from_utf8_lossy(name).into_owned(), data);
            at = next;
        }
        Ok(Self {
            records,
            truncated: true,
        })
    }

    /// The archive's folder (torch.save names it after the file) and its `data.pkl`.
    fn data_pkl(&self) -> anyhow::Result<(String, &'a [u8])> {
        let found = self.records.iter().find_map(|(name, data)| {
            let root = name.strip_suffix("/data.pkl")?;
            (!root.contains('/')).then(|| (root.to_string(), *data))
        });
        match found {
            Some(found) => Ok(found),
            None if self.truncated => bail!("`data.pkl` is cut off: the file is truncated"),
            None => bail!("no `data.pkl` in the zip archive: not written by torch.save"),
        }
    }
}

/// The length of the data at `data_at` and where the next header starts, from the data descriptor that
/// follows it: the first `PK\x07\x08` whose size field (zip64 or not) equals its own distance.
fn descriptor(bytes: &[u8], data_at: usize) -> Option<(usize, usize)> {
    let mut from = data_at;
    loop {
        let found = bytes
            .get(from..)?
            .windows(4)
            .position(|w| w == b"PK\x07\x08")?;
        let at = from + found;
        let len = at - data_at;
        // crc32, then the compressed size: 4 bytes, or 8 with zip64 (whose low half is the same).
        if le32(bytes, at + 8).ok() == Some(len as u32) {
            let wide = le64(bytes, at + 8).ok() == Some(len as u64)
                && le64(bytes, at + 16).ok() == Some(len as u64);
            return Some((len, at + if wide { 24 } else { 16 }));
        }
        from = at + 1;
    }
}

/// Where the end-of-directory record starts: it ends the file, save for a comment of up to 64 KiB.
fn find_end_of_directory(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(22)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last).rev().find(|&at| {
        le32(bytes, at).ok() == Some(END_OF_DIRECTORY)
            && le16(bytes, at + 20).ok().map(|c| at + 22 + usize::from(c)) == Some(bytes.len())
    })
}

/// The 8-byte values of a zip64 extra field (header id 1), if `extra` has one.
fn zip64_fields(extra: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut at = 0;
    let mut body: &[u8] = &[];
    while let (Ok(id), Ok(len)) = (le16(extra, at), le16(extra, at + 2)) {
        let Some(data) = slice(extra, at + 4, usize::from(len)) else {
            break;
        };
        if id == 1 {
            body = data;
            break;
        }
        at += 4 + usize::from(len);
    }
    body.chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
}

fn slice(bytes: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    bytes.get(at..at.checked_add(len)?)
}

fn le_bytes<const N: usize>(bytes: &[u8], at: usize) -> anyhow::Result<[u8; N]> {
    slice(bytes, at, N)
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("the zip data ends early (at byte {at} of {})", bytes.len()))
}

fn le16(bytes: &[u8], at: usize) -> anyhow::Result<u16> {
    le_bytes(bytes, at).map(u16::from_le_bytes)
}

fn le32(bytes: &[u8], at: usize) -> anyhow::Result<u32> {
    le_bytes(bytes, at).map(u32::from_le_bytes)
}

fn le64(bytes: &[u8], at: usize) -> anyhow::Result<u64> {
    le_bytes(bytes, at).map(u64::from_le_bytes)
}

fn to_usize(v: u64) -> anyhow::Result<usize> {
    usize::try_from(v).context("zip offset out of range")
}

/// A pickled value, as far as a `state_dict` needs one.
#[derive(Clone, Debug)]
enum Pickled {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Pickled>),
    List(Vec<Pickled>),
    Dict(Vec<(Pickled, Pickled)>),
    /// `module.name` of a class or function.
    Global(String),
    /// A storage's persistent id: its record under `data/` and its element type.
    Storage {
        key: String,
        kind: Kind,
    },
    Tensor(TensorRef),
    /// Anything else (the callable that made it, or `bytes`): kept so that it can be named in an error.
    Object(String),
}

impl Pickled {
    fn describe(&self) -> String {
        match self {
            Self::None => "None".into(),
            Self::Bool(b) => format!("the bool {b}"),
            Self::Int(i) => format!("the int {i}"),
            Self::Float(f) => format!("the float {f}"),
            Self::Str(s) => format!("the string {s:?}"),
            Self::Tuple(_) => "a tuple".into(),
            Self::List(_) => "a list".into(),
            Self::Dict(_) => "a dict".into(),
            Self::Global(name) => format!("`{name}`"),
            Self::Storage { .. } => "a storage".into(),
            Self::Tensor(_) => "a tensor".into(),
            Self::Object(name) => format!("a `{name}` object"),
        }
    }
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of one storage.
#[derive(Clone, Debug)]
struct TensorRef {
    key: String,
    kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

impl TensorRef {
    /// Makes the tensor from its storage's bytes, checking that the view lies inside them.
    fn build(&self, data: &[u8]) -> anyhow::Result<Tensor> {
        let elt = self.kind.elt_size_in_bytes();
        ensure!(
            data.len().is_multiple_of(elt),
            "storage `{}` has {} bytes, not a whole number of {:?} elements",
            self.key,
            data.len(),
            self.kind
        );
        let numel = (data.len() / elt) as i64;
        ensure!(
            self.size.len() == self.stride.len(),
            "{} sizes but {} strides",
            self.size.len(),
            self.stride.len()
        );
        ensure!(
            self.offset >= 0
                && self.size.iter().all(|&s| s >= 0)
                && self.stride.iter().all(|&s| s >= 0),
            "negative size, stride or offset"
        );
        if !self.size.contains(&0) {
            let last = self
                .size
                .iter()
                .zip(&self.stride)
                .try_fold(self.offset, |acc, (&n, &s)| {
                    (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
                });
            ensure!(
                last.is_some_and(|last| last < numel),
                "shape {:?} (strides {:?}, offset {}) reaches past the {numel} elements of storage `{}`",
                self.size,
                self.stride,
                self.offset,
                self.key
            );
        }
        let storage = Tensor::f_from_data_size(data, &[numel], self.kind)?;
        Ok(storage.f_as_strided(self.size.as_slice(), self.stride.as_slice(), self.offset)?)
    }
}

/// The value of an opcode that only reads the stream (numbers, strings, bytes, `GLOBAL` names), or `None` for an
/// opcode that works on the stack, the marks or the memo.
fn read_literal(op: u8, r: &mut Bytes<'_>, at: usize) -> anyhow::Result<Option<Pickled>> {
    Ok(Some(match op {
        b'K' => Pickled::Int(i64::from(r.u8()?)),
        b'M' => Pickled::Int(i64::from(u16::from_le_bytes(r.array()?))),
        b'J' => Pickled::Int(i64::from(i32::from_le_bytes(r.array()?))),
        0x8a => {
            // LONG1: little-endian two's complement of n bytes.
            let n = usize::from(r.u8()?);
            ensure!(n <= 8, "pickled integer of {n} bytes at byte {at}");
            let digits = r.take(n)?;
            let mut v = [if digits.last().is_some_and(|d| d & 0x80 != 0) {
                0xff
            } else {
                0
            }; 8];
            v[..n].copy_from_slice(digits);
            Pickled::Int(i64::from_le_bytes(v))
        }
        b'G' => Pickled::Float(f64::from_be_bytes(r.array()?)),
        b'X' | b'T' => {
            let n = u32::from_le_bytes(r.array()?) as usize;
            Pickled::Str(String::from_utf8_lossy(r.take(n)?).into_owned())
        }
        0x8c | b'U' => {
            let n = usize::from(r.u8()?);
            Pickled::Str(String::from_utf8_lossy(r.take(n)?).into_owned())
        }
        0x8d => {
            let n = to_usize(u64::from_le_bytes(r.array()?))?;
            Pickled::Str(String::from_utf8_lossy(r.take(n)?).into_owned())
        }
        b'B' => {
            let n = u32::from_le_bytes(r.array()?) as usize;
            r.take(n)?;
            Pickled::Object("bytes".into())
        }
        b'C' => {
            let n = usize::from(r.u8()?);
            r.take(n)?;
            Pickled::Object("bytes".into())
        }
        b'c' => {
            let module = r.line()?;
            let name = r.line()?;
            Pickled::Global(format!("{module}.{name}"))
        }
        _ => return Ok(None),
    }))
}

/// `APPEND(S)` (`a`, `e`) extend the list on top of the stack with `items`; `SETITEM(S)` (`s`, `u`) add them as
/// key, value pairs to the dict on top.
fn add_to_container(
    top: Option<&mut Pickled>,
    items: Vec<Pickled>,
    op: u8,
    at: usize,
) -> anyhow::Result<()> {
    if matches!(op, b'a' | b'e') {
        match top {
            Some(Pickled::List(list)) => list.extend(items),
            _ => bail!("pickle APPEND to a non-list at byte {at}"),
        }
        return Ok(());
    }
    ensure!(items.len().is_multiple_of(2), "odd SETITEMS at byte {at}");
    let Some(Pickled::Dict(dict)) = top else {
        bail!("pickle SETITEM on a non-dict at byte {at}");
    };
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        dict.push((k, v));
    }
    Ok(())
}

/// Runs the pickle program `data` far enough to rebuild a `state_dict`: containers, numbers, strings,
/// storages and tensors. Any other object is kept as [`Pickled::Object`]; nothing is ever called.
fn unpickle(data: &[u8]) -> anyhow::Result<Pickled> {
    let mut r = Bytes { data, at: 0 };
    let mut stack: Vec<Pickled> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u32, Pickled> = HashMap::new();
    let pop = |stack: &mut Vec<Pickled>| stack.pop().context("pickle stack underflow");
    let pop_mark =
        |stack: &mut Vec<Pickled>, marks: &mut Vec<usize>| -> anyhow::Result<Vec<Pickled>> {
            let mark = marks.pop().context("pickle mark missing")?;
            ensure!(mark <= stack.len(), "pickle mark past the stack");
            Ok(stack.split_off(mark))
        };
    loop {
        let at = r.at;
        let op = r.u8()?;
        if let Some(value) = read_literal(op, &mut r, at)? {
            stack.push(value);
            continue;
        }
        let value = match op {
            0x80 => {
                r.u8()?; // PROTO
                continue;
            }
            0x95 => {
                r.take(8)?; // FRAME
                continue;
            }
            b'.' => return pop(&mut stack),
            b'(' => {
                marks.push(stack.len());
                continue;
            }
            b')' => Pickled::Tuple(Vec::new()),
            b']' => Pickled::List(Vec::new()),
            b'}' => Pickled::Dict(Vec::new()),
            b'N' => Pickled::None,
            0x88 => Pickled::Bool(true),
            0x89 => Pickled::Bool(false),
            0x93 => {
                let (Pickled::Str(name), Pickled::Str(module)) =
                    (pop(&mut stack)?, pop(&mut stack)?)
                else {
                    bail!("STACK_GLOBAL without two strings at byte {at}");
                };
                Pickled::Global(format!("{module}.{name}"))
            }
            b'q' | b'r' | 0x94 => {
                let index = match op {
                    b'q' => u32::from(r.u8()?),
                    b'r' => u32::from_le_bytes(r.array()?),
                    _ => memo.len() as u32,
                };
                let top = stack.last().context("pickle memo of an empty stack")?;
                memo.insert(index, top.clone());
                continue;
            }
            b'h' | b'j' => {
                let index = if op == b'h' {
                    u32::from(r.u8()?)
                } else {
                    u32::from_le_bytes(r.array()?)
                };
                memo.get(&index)
                    .cloned()
                    .with_context(|| format!("pickle memo {index} unset at byte {at}"))?
            }
            b't' => Pickled::Tuple(pop_mark(&mut stack, &mut marks)?),
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                ensure!(stack.len() >= n, "pickle stack underflow at byte {at}");
                Pickled::Tuple(stack.split_off(stack.len() - n))
            }
            b'a' | b'e' | b's' | b'u' => {
                let items = match op {
                    b'a' => vec![pop(&mut stack)?],
                    b's' => {
                        let value = pop(&mut stack)?;
                        vec![pop(&mut stack)?, value]
                    }
                    _ => pop_mark(&mut stack, &mut marks)?,
                };
                add_to_container(stack.last_mut(), items, op, at)?;
                continue;
            }
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let func = pop(&mut stack)?;
                reduce(func, args).with_context(|| format!("at byte {at} of the pickle"))?
            }
            b'b' => {
                // BUILD sets attributes (a state_dict's `_metadata`); they do not matter here.
                pop(&mut stack)?;
                ensure!(!stack.is_empty(), "pickle BUILD of nothing at byte {at}");
                continue;
            }
            b'Q' => {
                storage(pop(&mut stack)?).with_context(|| format!("at byte {at} of the pickle"))?
            }
            b'0' => {
                pop(&mut stack)?;
                continue;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks)?;
                continue;
            }
            b'2' => stack
                .last()
                .cloned()
                .context("pickle DUP of an empty stack")?,
            _ => bail!("unsupported pickle opcode {op:#04x} at byte {at}"),
        };
        stack.push(value);
    }
}

/// Calls `func(*args)` for the callables a `state_dict` pickle uses; others become [`Pickled::Object`].
fn reduce(func: Pickled, args: Pickled) -> anyhow::Result<Pickled> {
    let Pickled::Global(name) = func else {
        bail!("pickle calls {}", func.describe());
    };
    let Pickled::Tuple(args) = args else {
        bail!("`{name}` called with {}", args.describe());
    };
    Ok(match name.as_str() {
        // A state_dict, its `_metadata` and a tensor's backward hooks; the items follow as SETITEMS.
        "collections.OrderedDict" if args.is_empty() => Pickled::Dict(Vec::new()),
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let [Pickled::Storage { key, kind }, Pickled::Int(offset), Pickled::Tuple(size), Pickled::Tuple(stride), ..] =
                args.as_slice()
            else {
                bail!("`{name}` with unexpected arguments");
            };
            Pickled::Tensor(TensorRef {
                key: key.clone(),
                kind: *kind,
                offset: *offset,
                size: ints(size).with_context(|| format!("`{name}` size"))?,
                stride: ints(stride).with_context(|| format!("`{name}` stride"))?,
            })
        }
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            match args.into_iter().next() {
                Some(tensor @ Pickled::Tensor(_)) => tensor,
                _ => bail!("`{name}` without a tensor"),
            }
        }
        _ => Pickled::Object(name),
    })
}

/// The storage a persistent id `('storage', torch.FloatStorage, key, location, numel)` names.
fn storage(pid: Pickled) -> anyhow::Result<Pickled> {
    let Pickled::Tuple(pid) = pid else {
        bail!("persistent id {} is not a tuple", pid.describe());
    };
    let [Pickled::Str(tag), Pickled::Global(class), Pickled::Str(key), ..] = pid.as_slice() else {
        bail!("persistent id not of a storage");
    };
    ensure!(
        tag == "storage",
        "persistent id of a `{tag}`, not a storage"
    );
    let kind = match class.as_str() {
        "torch.FloatStorage" => Kind::Float,
        "torch.DoubleStorage" => Kind::Double,
        "torch.HalfStorage" => Kind::Half,
        "torch.BFloat16Storage" => Kind::BFloat16,
        "torch.LongStorage" => Kind::Int64,
        "torch.IntStorage" => Kind::Int,
        "torch.ShortStorage" => Kind::Int16,
        "torch.CharStorage" => Kind::Int8,
        "torch.ByteStorage" => Kind::Uint8,
        "torch.BoolStorage" => Kind::Bool,
        _ => bail!("unsupported storage type `{class}`"),
    };
    Ok(Pickled::Storage {
        key: key.clone(),
        kind,
    })
}

fn ints(items: &[Pickled]) -> anyhow::Result<Vec<i64>> {
    items
        .iter()
        .map(|item| match item {
            Pickled::Int(i) => Ok(*i),
            other => bail!("{} where an int belongs", other.describe()),
        })
        .collect()
}

/// A cursor over the pickle's bytes.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        let bytes = slice(self.data, self.at, n).with_context(|| {
            format!(
                "the pickle ends early (at byte {} of {})",
                self.at,
                self.data.len()
            )
        })?;
        self.at += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A newline-terminated text argument (GLOBAL's module and name).
    fn line(&mut self) -> anyhow::Result<String> {
        let rest = &self.data[self.at.min(self.data.len())..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .context("the pickle ends inside a GLOBAL")?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickles_other_than_a_state_dict_are_refused() {
        // `{'state_dict': 1}` (protocol 2): no tensors at the top level.
        let pickle = b"\x80\x02}q\x00X\n\x00\x00\x00state_dictq\x01K\x01s.";
        let top = unpickle(pickle).unwrap();
        assert!(
            matches!(&top, Pickled::Dict(items) if items.len() == 1),
            "{top:?}"
        );
        // Globals are never called: an unknown one stays an object.
        let pickle = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let top = unpickle(pickle).unwrap();
        assert!(
            matches!(&top, Pickled::Object(name) if name == "os.system"),
            "{top:?}"
        );
        // Cut short: an error, not a panic.
        assert!(unpickle(&pickle[..10]).is_err());
    }
}
