//! Builds Postgres datums and JSON from DuckDB vectors.
//!
//! A [`Converter`] is planned once per result column: the DuckDB type, the natural Postgres
//! type, and (when the caller's column definition list asks for another type) the Postgres cast
//! from the natural type to the requested one, found the way Postgres's own `CAST` finds it.

use std::ffi::{c_char, CString};
use std::fmt::Write as _;

use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::{IntoDatum, PgSqlErrorCode};

use super::ffi::Vector;
use super::types::{decimal_text, pg_date, pg_timestamp, uuid_bytes, DuckType, PgType, Scalar};
use crate::error::{Error, Result};

/// A Postgres function looked up once and called per value.
struct PgFunction {
    flinfo: Box<pg_sys::FmgrInfo>,
    nargs: i32,
}

impl PgFunction {
    fn lookup(oid: Oid) -> Self {
        // SAFETY: catalog lookups on the backend thread; FmgrInfo is fully initialized by fmgr_info.
        unsafe {
            let mut flinfo: Box<pg_sys::FmgrInfo> = Box::new(std::mem::zeroed());
            pg_sys::fmgr_info(oid, flinfo.as_mut());
            PgFunction {
                flinfo,
                nargs: pg_sys::get_func_nargs(oid),
            }
        }
    }

    /// Calls a cast-shaped function: f(value [, typmod [, is_explicit]]).
    fn cast(&mut self, value: Datum, typmod: i32) -> Datum {
        let (typmod, explicit) = (Datum::from(typmod), Datum::from(true));
        // SAFETY: the function was looked up for exactly this argument shape.
        unsafe {
            match self.nargs {
                1 => pg_sys::FunctionCall1Coll(self.flinfo.as_mut(), Oid::INVALID, value),
                2 => pg_sys::FunctionCall2Coll(self.flinfo.as_mut(), Oid::INVALID, value, typmod),
                _ => pg_sys::FunctionCall3Coll(
                    self.flinfo.as_mut(),
                    Oid::INVALID,
                    value,
                    typmod,
                    explicit,
                ),
            }
        }
    }
}

/// A type's text input function, for values DuckDB hands over as text (numeric, jsonb, varbit).
struct TextInput {
    function: PgFunction,
    ioparam: Oid,
    typmod: i32,
}

impl TextInput {
    fn for_type(ty: PgType) -> Self {
        let (mut func, mut ioparam) = (Oid::INVALID, Oid::INVALID);
        // SAFETY: catalog lookup on the backend thread.
        unsafe { pg_sys::getTypeInputInfo(ty.oid, &mut func, &mut ioparam) };
        TextInput {
            function: PgFunction::lookup(func),
            ioparam,
            typmod: ty.typmod,
        }
    }

    fn parse(&mut self, text: &str) -> Result<Datum> {
        let c = CString::new(text).map_err(|_| nul_byte_error())?;
        // SAFETY: a valid C string and an input function looked up for this type.
        Ok(unsafe {
            pg_sys::InputFunctionCall(
                self.function.flinfo.as_mut(),
                c.as_ptr().cast_mut(),
                self.ioparam,
                self.typmod,
            )
        })
    }
}

/// How a natural-type datum becomes the type the caller asked for.
enum Cast {
    /// Same type, or binary-compatible (a Postgres "relabel").
    None,
    Function(PgFunction),
    /// Through the text form: output function of the source, input function of the target.
    ViaText {
        output: PgFunction,
        input: TextInput,
    },
}

/// Everything needed to turn values of one DuckDB column into one Postgres type.
pub struct Converter {
    pub duck: DuckType,
    pub natural: PgType,
    pub target: PgType,
    cast: Cast,
    /// Length coercion (e.g. varchar(5), numeric(10,2)) when the cast does not apply it.
    typmod_cast: Option<PgFunction>,
    /// Input function of the natural type, for values that arrive as text.
    text_input: Option<TextInput>,
    element: Option<ArrayElement>,
    utf8_database: bool,
    /// Fixed-width values that become a datum as they are (the per-row fast path).
    direct: Option<Direct>,
}

#[derive(Clone, Copy)]
enum Direct {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Direct {
    fn plan(duck: &DuckType, natural: PgType, target: PgType) -> Option<Direct> {
        if natural != target {
            return None;
        }
        Some(match duck {
            DuckType::Boolean => Direct::Bool,
            DuckType::SmallInt => Direct::I16,
            DuckType::Integer => Direct::I32,
            DuckType::BigInt => Direct::I64,
            DuckType::Float => Direct::F32,
            DuckType::Double => Direct::F64,
            _ => return None,
        })
    }

    /// # Safety
    /// The vector must hold this physical type and `row` must be in range.
    unsafe fn datum(self, v: &Vector<'_>, row: usize) -> Datum {
        unsafe {
            match self {
                Direct::Bool => Datum::from(v.value::<bool>(row)),
                Direct::I16 => Datum::from(v.value::<i16>(row)),
                Direct::I32 => Datum::from(v.value::<i32>(row)),
                Direct::I64 => Datum::from(v.value::<i64>(row)),
                Direct::F32 => Datum::from(v.value::<f32>(row).to_bits()),
                Direct::F64 => Datum::from(v.value::<f64>(row).to_bits()),
            }
        }
    }
}

/// Element layout of the natural array type, for `construct_md_array`.
struct ArrayElement {
    duck: DuckType,
    pg: PgType,
    len: i16,
    byval: bool,
    align: c_char,
    text_input: Option<TextInput>,
}

fn nul_byte_error() -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
        "a DuckDB string contains a NUL byte, which PostgreSQL text cannot store",
    )
    .with_hint("Remove it in the query, e.g. replace(col, chr(0), '').")
}

/// Types whose values arrive from DuckDB as text and go through the Postgres input function.
fn needs_text_input(duck: &DuckType, pg: PgType) -> bool {
    pg.oid == pg_sys::NUMERICOID || pg.oid == pg_sys::JSONBOID || matches!(duck, DuckType::Bit)
}

fn unsupported(duck: &DuckType) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("DuckDB type {duck} cannot be returned to PostgreSQL"),
    )
    .with_hint("Cast the column in the DuckDB query, e.g. col::VARCHAR or to_json(col).")
}

fn contains_unsupported(duck: &DuckType) -> Option<&DuckType> {
    match duck {
        DuckType::Unsupported(_) => Some(duck),
        DuckType::List(c) | DuckType::Array(c, _) => contains_unsupported(c),
        DuckType::Map(k, v) => contains_unsupported(k).or_else(|| contains_unsupported(v)),
        DuckType::Struct(items) | DuckType::Union(items) => {
            items.iter().find_map(|(_, t)| contains_unsupported(t))
        }
        _ => None,
    }
}

/// Fails, naming the column, when a DuckDB type (or a type nested in it) has no Postgres form.
pub fn ensure_supported(duck: &DuckType, column: &str, position: usize) -> Result<()> {
    match contains_unsupported(duck) {
        Some(bad) => Err(unsupported(bad).with_detail(format!("column {position} (\"{column}\")"))),
        None => Ok(()),
    }
}

impl Converter {
    /// Plans the conversion of a column; `target` is the caller's type, or `None` for the
    /// natural one. Fails when no Postgres cast leads from the natural type to the target.
    pub fn new(
        duck: DuckType,
        target: Option<PgType>,
        column: &str,
        position: usize,
    ) -> Result<Self> {
        ensure_supported(&duck, column, position)?;
        let natural = duck.natural_pg_type();
        let target = target.unwrap_or(natural);
        let (cast, applies_typmod) = plan_cast(natural, target).ok_or_else(|| {
            Error::new(
                PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                format!(
                    "column {position} (\"{column}\") is DuckDB type {duck}, which cannot be returned as {}",
                    target.sql_name()
                ),
            )
            .with_detail(format!(
                "DuckDB's {duck} arrives as PostgreSQL {}, and there is no cast from it to {}.",
                natural.sql_name(),
                target.sql_name()
            ))
            .with_hint(format!(
                "Declare the column as {} in the column definition list, or cast it in the DuckDB query.",
                natural.sql_name()
            ))
        })?;
        let typmod_cast = if target.typmod >= 0 && !applies_typmod && target != natural {
            let mut func = Oid::INVALID;
            // SAFETY: catalog lookup on the backend thread.
            let path = unsafe { pg_sys::find_typmod_coercion_function(target.oid, &mut func) };
            (path == pg_sys::CoercionPathType::COERCION_PATH_FUNC).then(|| PgFunction::lookup(func))
        } else {
            None
        };
        let element = match &duck {
            DuckType::List(child) | DuckType::Array(child, _)
                if natural.oid != pg_sys::JSONBOID =>
            {
                let pg = child.natural_pg_type();
                let (mut len, mut byval, mut align) = (0i16, false, 0 as c_char);
                // SAFETY: catalog lookup on the backend thread.
                unsafe { pg_sys::get_typlenbyvalalign(pg.oid, &mut len, &mut byval, &mut align) };
                let text_input = needs_text_input(child, pg).then(|| TextInput::for_type(pg));
                Some(ArrayElement {
                    duck: (**child).clone(),
                    pg,
                    len,
                    byval,
                    align,
                    text_input,
                })
            }
            _ => None,
        };
        let text_input = (element.is_none() && needs_text_input(&duck, natural))
            .then(|| TextInput::for_type(natural));
        // SAFETY: reads the database encoding, fixed for the session.
        let utf8_database =
            unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_UTF8 as i32;
        let direct = Direct::plan(&duck, natural, target);
        Ok(Converter {
            direct,
            duck,
            natural,
            target,
            cast,
            typmod_cast,
            text_input,
            element,
            utf8_database,
        })
    }

    /// The datum for the non-NULL value at `row`, in the target type.
    pub fn datum(&mut self, v: &Vector<'_>, row: usize) -> Result<Datum> {
        if let Some(direct) = self.direct {
            // SAFETY: planned for this vector's type; the caller passes a valid row.
            return Ok(unsafe { direct.datum(v, row) });
        }
        let natural = if let Some(element) = &mut self.element {
            array_datum(&self.duck, element, v, row, self.utf8_database)?
        } else if self.natural.oid == pg_sys::JSONBOID {
            let mut json = String::new();
            write_json(&self.duck, v, row, &mut json, self.utf8_database)?;
            self.text_input
                .as_mut()
                .expect("jsonb has a text input")
                .parse(&json)?
        } else {
            // SAFETY: the caller checked validity; the vector has this converter's type.
            let scalar = unsafe { self.duck.read_scalar(v, row) };
            scalar_datum(
                scalar,
                self.natural,
                self.text_input.as_mut(),
                self.utf8_database,
            )?
        };
        Ok(self.cast_to_target(natural))
    }

    /// A jsonb datum from JSON text; only for a converter planned for DuckDB's JSON type.
    pub fn jsonb_from_text(&mut self, json: &str) -> Result<Datum> {
        self.text_input
            .as_mut()
            .expect("a JSON converter parses jsonb text")
            .parse(json)
    }

    fn cast_to_target(&mut self, value: Datum) -> Datum {
        let value = match &mut self.cast {
            Cast::None => value,
            Cast::Function(f) => f.cast(value, self.target.typmod),
            Cast::ViaText { output, input } => {
                // SAFETY: output/input functions looked up for the natural and target types.
                unsafe {
                    let text = pg_sys::OutputFunctionCall(output.flinfo.as_mut(), value);
                    pg_sys::InputFunctionCall(
                        input.function.flinfo.as_mut(),
                        text,
                        input.ioparam,
                        input.typmod,
                    )
                }
            }
        };
        match &mut self.typmod_cast {
            Some(f) => f.cast(value, self.target.typmod),
            None => value,
        }
    }
}

/// Finds the cast natural → target. Returns the plan and whether it already applies the typmod.
fn plan_cast(natural: PgType, target: PgType) -> Option<(Cast, bool)> {
    if natural.oid == target.oid {
        return Some((Cast::None, false));
    }
    let mut func = Oid::INVALID;
    // SAFETY: catalog lookup on the backend thread.
    let path = unsafe {
        pg_sys::find_coercion_pathway(
            target.oid,
            natural.oid,
            pg_sys::CoercionContext::COERCION_EXPLICIT,
            &mut func,
        )
    };
    use pg_sys::CoercionPathType::*;
    match path {
        COERCION_PATH_RELABELTYPE => Some((Cast::None, false)),
        COERCION_PATH_FUNC => {
            let f = PgFunction::lookup(func);
            let applies_typmod = f.nargs >= 2;
            Some((Cast::Function(f), applies_typmod))
        }
        COERCION_PATH_COERCEVIAIO | COERCION_PATH_ARRAYCOERCE => {
            let (mut out, mut varlena) = (Oid::INVALID, false);
            // SAFETY: catalog lookup on the backend thread.
            unsafe { pg_sys::getTypeOutputInfo(natural.oid, &mut out, &mut varlena) };
            Some((
                Cast::ViaText {
                    output: PgFunction::lookup(out),
                    input: TextInput::for_type(target),
                },
                true,
            ))
        }
        _ => None,
    }
}

fn checked_text(bytes: &[u8]) -> Result<&str> {
    if bytes.contains(&0) {
        return Err(nul_byte_error());
    }
    std::str::from_utf8(bytes).map_err(|_| {
        Error::new(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "a DuckDB string is not valid UTF-8",
        )
    })
}

fn text_datum(bytes: &[u8], utf8_database: bool) -> Result<Datum> {
    let text = checked_text(bytes)?;
    // SAFETY: builds a palloc'd text value from a valid buffer; pg_any_to_server converts to the
    // database encoding (and errors out, as Postgres would, on unconvertible characters).
    unsafe {
        let (ptr, len) = if utf8_database {
            (text.as_ptr() as *const c_char, text.len())
        } else {
            let converted = pg_sys::pg_any_to_server(
                text.as_ptr() as *const c_char,
                text.len() as i32,
                pg_sys::pg_enc::PG_UTF8 as i32,
            );
            (
                converted as *const c_char,
                std::ffi::CStr::from_ptr(converted).to_bytes().len(),
            )
        };
        Ok(Datum::from(pg_sys::cstring_to_text_with_len(
            ptr, len as i32,
        )))
    }
}

fn bytea_datum(bytes: &[u8]) -> Datum {
    // SAFETY: allocates a varlena of the right size in the current memory context.
    unsafe {
        let total = bytes.len() + pg_sys::VARHDRSZ;
        let ptr = pg_sys::palloc(total) as *mut u8;
        pgrx::set_varsize_4b(ptr as *mut pg_sys::varlena, total as i32);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.add(pg_sys::VARHDRSZ), bytes.len());
        Datum::from(ptr)
    }
}

fn palloc_value<T>(value: T) -> Datum {
    // SAFETY: a palloc'd copy of a plain struct (Interval, TimeTzADT, uuid bytes).
    unsafe {
        let ptr = pg_sys::palloc(std::mem::size_of::<T>()) as *mut T;
        ptr.write(value);
        Datum::from(ptr)
    }
}

fn int_datum(value: i128, pg: PgType, input: Option<&mut TextInput>) -> Result<Datum> {
    let overflow = || {
        Error::new(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "integer out of range",
        )
    };
    Ok(match pg.oid {
        pg_sys::INT2OID => Datum::from(i16::try_from(value).map_err(|_| overflow())?),
        pg_sys::INT4OID => Datum::from(i32::try_from(value).map_err(|_| overflow())?),
        pg_sys::INT8OID => Datum::from(i64::try_from(value).map_err(|_| overflow())?),
        _ => input
            .expect("numeric has a text input")
            .parse(&value.to_string())?,
    })
}

/// A scalar in its natural Postgres type.
fn scalar_datum(
    scalar: Scalar<'_>,
    pg: PgType,
    input: Option<&mut TextInput>,
    utf8_database: bool,
) -> Result<Datum> {
    Ok(match scalar {
        Scalar::Bool(b) => Datum::from(b),
        Scalar::Int(i) => int_datum(i, pg, input)?,
        Scalar::UInt(u) => input
            .expect("numeric has a text input")
            .parse(&u.to_string())?,
        Scalar::Float4(f) => f.into_datum().expect("float4 datum"),
        Scalar::Float(f) => f.into_datum().expect("float8 datum"),
        Scalar::Decimal(v, scale) => input
            .expect("numeric has a text input")
            .parse(&decimal_text(v, scale))?,
        Scalar::Text(bytes) | Scalar::Json(bytes) if pg.oid == pg_sys::JSONBOID => input
            .expect("jsonb has a text input")
            .parse(checked_text(bytes)?)?,
        Scalar::Text(bytes) | Scalar::Json(bytes) => text_datum(bytes, utf8_database)?,
        Scalar::Enum(s) => text_datum(s.as_bytes(), utf8_database)?,
        Scalar::Bytes(bytes) => bytea_datum(bytes),
        Scalar::Bits(bits) => input.expect("varbit has a text input").parse(&bits)?,
        Scalar::Date(days) => Datum::from(pg_date(days)?),
        Scalar::Time(micros) => Datum::from(micros),
        Scalar::TimeTz {
            micros,
            offset_seconds,
        } => {
            // Postgres counts zones in seconds west of UTC, DuckDB in seconds east.
            palloc_value(pg_sys::TimeTzADT {
                time: micros,
                zone: -offset_seconds,
            })
        }
        Scalar::Timestamp(v, unit) => Datum::from(pg_timestamp(v, unit)?),
        Scalar::TimestampTz(v) => Datum::from(pg_timestamp(v, super::types::TimeUnit::Micros)?),
        Scalar::Interval {
            months,
            days,
            micros,
        } => palloc_value(pg_sys::Interval {
            time: micros,
            day: days,
            month: months,
        }),
        Scalar::Uuid(v) => palloc_value(uuid_bytes(v)),
    })
}

/// A LIST or ARRAY of scalars as a one-dimensional Postgres array.
fn array_datum(
    duck: &DuckType,
    element: &mut ArrayElement,
    v: &Vector<'_>,
    row: usize,
    utf8_database: bool,
) -> Result<Datum> {
    let (child, offset, len) = match duck {
        // SAFETY: list vectors hold list entries.
        DuckType::List(_) => {
            let (offset, len) = unsafe { v.list_entry(row) };
            (v.list_child(), offset, len)
        }
        DuckType::Array(_, size) => (v.array_child(), row * size, *size),
        _ => unreachable!("array_datum is only planned for LIST and ARRAY"),
    };
    let mut values = Vec::with_capacity(len);
    let mut nulls = Vec::with_capacity(len);
    for i in offset..offset + len {
        if child.is_valid(i) {
            // SAFETY: i is inside the child vector, which has the element type.
            let scalar = unsafe { element.duck.read_scalar(&child, i) };
            values.push(scalar_datum(
                scalar,
                element.pg,
                element.text_input.as_mut(),
                utf8_database,
            )?);
            nulls.push(false);
        } else {
            values.push(Datum::from(0));
            nulls.push(true);
        }
    }
    let mut dims = [len as i32];
    let mut lbs = [1i32];
    // SAFETY: values/nulls have `len` entries of the element type described by `element`.
    let array = unsafe {
        pg_sys::construct_md_array(
            values.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            element.pg.oid,
            element.len as i32,
            element.byval,
            element.align,
        )
    };
    Ok(Datum::from(array))
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// JSON for the float, with Postgres's spelling of the values JSON cannot express.
fn json_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("\"NaN\"");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Date/time values in JSON are written exactly as Postgres's `to_jsonb` writes them: ISO 8601
/// for dates and timestamps, the type's output function for intervals.
fn json_datetime(out: &mut String, value: Datum, type_oid: Oid) {
    let mut buf = [0 as c_char; pg_sys::MAXDATELEN as usize + 1];
    // SAFETY: JsonEncodeDateTime writes a NUL-terminated string of at most MAXDATELEN bytes;
    // the output function returns a palloc'd C string.
    let text = unsafe {
        let c = if type_oid == pg_sys::INTERVALOID {
            let (mut out_fn, mut varlena) = (Oid::INVALID, false);
            pg_sys::getTypeOutputInfo(type_oid, &mut out_fn, &mut varlena);
            pg_sys::OidOutputFunctionCall(out_fn, value)
        } else {
            pg_sys::JsonEncodeDateTime(buf.as_mut_ptr(), value, type_oid, std::ptr::null())
        };
        std::ffi::CStr::from_ptr(c).to_string_lossy().into_owned()
    };
    json_string(out, &text);
}

/// Appends the value at `row` (NULL included) as JSON.
pub fn write_json(
    duck: &DuckType,
    v: &Vector<'_>,
    row: usize,
    out: &mut String,
    utf8_database: bool,
) -> Result<()> {
    if !v.is_valid(row) {
        out.push_str("null");
        return Ok(());
    }
    match duck {
        DuckType::List(child) | DuckType::Array(child, _) => {
            let (items, offset, len) = match duck {
                DuckType::List(_) => {
                    // SAFETY: list vectors hold list entries.
                    let (offset, len) = unsafe { v.list_entry(row) };
                    (v.list_child(), offset, len)
                }
                DuckType::Array(_, size) => (v.array_child(), row * size, *size),
                _ => unreachable!(),
            };
            out.push('[');
            for i in offset..offset + len {
                if i > offset {
                    out.push(',');
                }
                write_json(child, &items, i, out, utf8_database)?;
            }
            out.push(']');
        }
        DuckType::Struct(fields) => {
            out.push('{');
            for (i, (name, ty)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, name);
                out.push(':');
                write_json(ty, &v.struct_child(i), row, out, utf8_database)?;
            }
            out.push('}');
        }
        DuckType::Map(key_type, value_type) => {
            // A MAP is a list of {key, value} structs; JSON gets an object keyed by the key's text.
            // SAFETY: map vectors hold list entries.
            let (offset, len) = unsafe { v.list_entry(row) };
            let entries = v.list_child();
            let (keys, values) = (entries.struct_child(0), entries.struct_child(1));
            out.push('{');
            for i in offset..offset + len {
                if i > offset {
                    out.push(',');
                }
                let mut key = String::new();
                write_json(key_type, &keys, i, &mut key, utf8_database)?;
                match serde_json::from_str::<serde_json::Value>(&key) {
                    Ok(serde_json::Value::String(s)) => json_string(out, &s),
                    _ => json_string(out, &key),
                }
                out.push(':');
                write_json(value_type, &values, i, out, utf8_database)?;
            }
            out.push('}');
        }
        DuckType::Union(members) => {
            // Child 0 holds the tag of the active member; member k is child k + 1.
            // SAFETY: union vectors are structs whose first child is the u8 tag.
            let tag = unsafe { v.struct_child(0).value::<u8>(row) } as usize;
            match members.get(tag) {
                Some((_, ty)) => write_json(ty, &v.struct_child(tag + 1), row, out, utf8_database)?,
                None => out.push_str("null"),
            }
        }
        scalar_type => {
            // SAFETY: validity checked above; the vector has this scalar type.
            let scalar = unsafe { scalar_type.read_scalar(v, row) };
            write_scalar_json(scalar, out, utf8_database)?;
        }
    }
    Ok(())
}

fn write_scalar_json(scalar: Scalar<'_>, out: &mut String, utf8_database: bool) -> Result<()> {
    match scalar {
        Scalar::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Scalar::Float4(f) => json_float(out, f64::from(f)),
        Scalar::Float(f) => json_float(out, f),
        Scalar::Decimal(v, scale) => out.push_str(&decimal_text(v, scale)),
        Scalar::Text(bytes) => json_string(out, checked_text(bytes)?),
        Scalar::Json(bytes) => out.push_str(checked_text(bytes)?),
        Scalar::Enum(s) => json_string(out, s),
        Scalar::Bytes(bytes) => {
            let mut hex = String::with_capacity(2 + bytes.len() * 2);
            hex.push_str("\\x");
            for b in bytes {
                let _ = write!(hex, "{b:02x}");
            }
            json_string(out, &hex);
        }
        Scalar::Bits(bits) => json_string(out, &bits),
        Scalar::Uuid(v) => {
            let b = uuid_bytes(v);
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let text = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            json_string(out, &text);
        }
        Scalar::Interval { .. }
        | Scalar::Date(_)
        | Scalar::Time(_)
        | Scalar::TimeTz { .. }
        | Scalar::Timestamp(..)
        | Scalar::TimestampTz(_) => {
            let oid = match scalar {
                Scalar::Interval { .. } => pg_sys::INTERVALOID,
                Scalar::Date(_) => pg_sys::DATEOID,
                Scalar::Time(_) => pg_sys::TIMEOID,
                Scalar::TimeTz { .. } => pg_sys::TIMETZOID,
                Scalar::Timestamp(..) => pg_sys::TIMESTAMPOID,
                _ => pg_sys::TIMESTAMPTZOID,
            };
            let datum = scalar_datum(scalar, PgType { oid, typmod: -1 }, None, utf8_database)?;
            json_datetime(out, datum, oid);
        }
    }
    Ok(())
}
