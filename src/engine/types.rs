//! DuckDB values → Postgres values.
//!
//! [`DuckType`] describes how a DuckDB column is laid out in memory; [`DuckType::natural_pg_type`]
//! says which Postgres type it becomes; [`Converter`] turns one value of a column into a Postgres
//! datum (or into JSON, for `query_json` and for nested values). Every conversion runs on the
//! backend thread, one chunk at a time.

use std::fmt;

use duckdb::ffi;
use pgrx::pg_sys::{self, Oid};
use pgrx::PgSqlErrorCode;

use super::ffi::{LogicalType, Vector};
use crate::error::{Error, Result};

/// Physical width of integers used inside DECIMAL and ENUM vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntWidth {
    U8,
    U16,
    U32,
    I16,
    I32,
    I64,
    I128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

/// A DuckDB column type, as far as conversion needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum DuckType {
    Null,
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    UTinyInt,
    USmallInt,
    UInteger,
    UBigInt,
    HugeInt,
    UHugeInt,
    Float,
    Double,
    Decimal {
        width: u8,
        scale: u8,
        physical: IntWidth,
    },
    Varchar,
    Json,
    Blob,
    Bit,
    Date,
    Time,
    TimeNs,
    TimeTz,
    Timestamp(TimeUnit),
    TimestampTz,
    Interval,
    Uuid,
    Enum {
        physical: IntWidth,
        dictionary: Vec<String>,
    },
    List(Box<DuckType>),
    Array(Box<DuckType>, usize),
    Struct(Vec<(String, DuckType)>),
    Map(Box<DuckType>, Box<DuckType>),
    Union(Vec<(String, DuckType)>),
    /// Types with no faithful mapping (BIGNUM, VARIANT, GEOMETRY, …): the query must cast them.
    Unsupported(String),
}

fn int_width(id: ffi::DUCKDB_TYPE) -> Option<IntWidth> {
    Some(match id {
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => IntWidth::U8,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => IntWidth::U16,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER => IntWidth::U32,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => IntWidth::I16,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => IntWidth::I32,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => IntWidth::I64,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT => IntWidth::I128,
        _ => return None,
    })
}

impl DuckType {
    pub fn from_logical(t: &LogicalType) -> DuckType {
        use DuckType::*;
        let id = t.id();
        match id {
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_SQLNULL => Null,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => Boolean,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TINYINT => TinyInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => SmallInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => Integer,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => BigInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => UTinyInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => USmallInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER => UInteger,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT => UBigInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT => HugeInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT => UHugeInt,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_FLOAT => Float,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE => Double,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL => {
                let (width, scale) = t.decimal_width_scale();
                match int_width(t.decimal_internal_type()) {
                    Some(physical) => Decimal {
                        width,
                        scale,
                        physical,
                    },
                    None => Unsupported(format!("DECIMAL({width},{scale})")),
                }
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => match t.alias().as_deref() {
                Some(alias) if alias.eq_ignore_ascii_case("json") => Json,
                _ => Varchar,
            },
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BLOB => Blob,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIT => Bit,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE => Date,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIME => Time,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIME_NS => TimeNs,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIME_TZ => TimeTz,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP => Timestamp(TimeUnit::Micros),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_S => Timestamp(TimeUnit::Seconds),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_MS => Timestamp(TimeUnit::Millis),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_NS => Timestamp(TimeUnit::Nanos),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ => TimestampTz,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => Interval,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UUID => Uuid,
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_ENUM => {
                let physical = match t.enum_internal_type() {
                    ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => IntWidth::U8,
                    ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => IntWidth::U16,
                    _ => IntWidth::U32,
                };
                Enum {
                    physical,
                    dictionary: t.enum_dictionary(),
                }
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_LIST => {
                List(Box::new(Self::from_logical(&t.list_child())))
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_ARRAY => {
                let (child, size) = t.array_child();
                Array(Box::new(Self::from_logical(&child)), size)
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_STRUCT => Struct(
                t.struct_fields()
                    .iter()
                    .map(|(n, t)| (n.clone(), Self::from_logical(t)))
                    .collect(),
            ),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_MAP => {
                let (k, v) = t.map_key_value();
                Map(
                    Box::new(Self::from_logical(&k)),
                    Box::new(Self::from_logical(&v)),
                )
            }
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_UNION => Union(
                t.union_members()
                    .iter()
                    .map(|(n, t)| (n.clone(), Self::from_logical(t)))
                    .collect(),
            ),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGNUM => Unsupported("BIGNUM".into()),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_GEOMETRY => Unsupported("GEOMETRY".into()),
            ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARIANT => Unsupported("VARIANT".into()),
            other => Unsupported(format!("DuckDB type #{other}")),
        }
    }

    /// Element types that can live in a one-dimensional Postgres array.
    fn is_array_element(&self) -> bool {
        !matches!(
            self,
            DuckType::List(_)
                | DuckType::Array(..)
                | DuckType::Struct(_)
                | DuckType::Map(..)
                | DuckType::Union(_)
                | DuckType::Json
                | DuckType::Unsupported(_)
        )
    }

    /// The Postgres type a column of this type becomes when the caller does not say otherwise.
    pub fn natural_pg_type(&self) -> PgType {
        use DuckType::*;
        let scalar = |oid: Oid| PgType { oid, typmod: -1 };
        match self {
            Null | Varchar | Enum { .. } => scalar(pg_sys::TEXTOID),
            Boolean => scalar(pg_sys::BOOLOID),
            TinyInt | SmallInt | UTinyInt => scalar(pg_sys::INT2OID),
            Integer | USmallInt => scalar(pg_sys::INT4OID),
            BigInt | UInteger => scalar(pg_sys::INT8OID),
            UBigInt | HugeInt | UHugeInt => scalar(pg_sys::NUMERICOID),
            Float => scalar(pg_sys::FLOAT4OID),
            Double => scalar(pg_sys::FLOAT8OID),
            Decimal { width, scale, .. } => PgType {
                oid: pg_sys::NUMERICOID,
                // Postgres packs numeric(p,s) as ((p << 16) | s) + VARHDRSZ.
                typmod: ((i32::from(*width) << 16) | i32::from(*scale)) + pg_sys::VARHDRSZ as i32,
            },
            Blob => scalar(pg_sys::BYTEAOID),
            Bit => scalar(pg_sys::VARBITOID),
            Date => scalar(pg_sys::DATEOID),
            Time | TimeNs => scalar(pg_sys::TIMEOID),
            TimeTz => scalar(pg_sys::TIMETZOID),
            Timestamp(_) => scalar(pg_sys::TIMESTAMPOID),
            TimestampTz => scalar(pg_sys::TIMESTAMPTZOID),
            Interval => scalar(pg_sys::INTERVALOID),
            Uuid => scalar(pg_sys::UUIDOID),
            Json | Struct(_) | Map(..) | Union(_) => scalar(pg_sys::JSONBOID),
            List(child) | Array(child, _) if child.is_array_element() => {
                let element = child.natural_pg_type();
                // SAFETY: catalog lookup on the backend thread.
                let array = unsafe { pg_sys::get_array_type(element.oid) };
                PgType {
                    oid: array,
                    typmod: element.typmod,
                }
            }
            List(_) | Array(..) => scalar(pg_sys::JSONBOID),
            // Never produced as a column: Converter::new refuses these first.
            Unsupported(_) => scalar(pg_sys::TEXTOID),
        }
    }
}

impl fmt::Display for DuckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DuckType::*;
        let fields = |f: &mut fmt::Formatter<'_>, name: &str, items: &[(String, DuckType)]| {
            write!(f, "{name}(")?;
            for (i, (n, t)) in items.iter().enumerate() {
                write!(f, "{}{n} {t}", if i > 0 { ", " } else { "" })?;
            }
            write!(f, ")")
        };
        match self {
            Null => write!(f, "NULL"),
            Boolean => write!(f, "BOOLEAN"),
            TinyInt => write!(f, "TINYINT"),
            SmallInt => write!(f, "SMALLINT"),
            Integer => write!(f, "INTEGER"),
            BigInt => write!(f, "BIGINT"),
            UTinyInt => write!(f, "UTINYINT"),
            USmallInt => write!(f, "USMALLINT"),
            UInteger => write!(f, "UINTEGER"),
            UBigInt => write!(f, "UBIGINT"),
            HugeInt => write!(f, "HUGEINT"),
            UHugeInt => write!(f, "UHUGEINT"),
            Float => write!(f, "FLOAT"),
            Double => write!(f, "DOUBLE"),
            Decimal { width, scale, .. } => write!(f, "DECIMAL({width},{scale})"),
            Varchar => write!(f, "VARCHAR"),
            Json => write!(f, "JSON"),
            Blob => write!(f, "BLOB"),
            Bit => write!(f, "BIT"),
            Date => write!(f, "DATE"),
            Time => write!(f, "TIME"),
            TimeNs => write!(f, "TIME_NS"),
            TimeTz => write!(f, "TIME WITH TIME ZONE"),
            Timestamp(TimeUnit::Seconds) => write!(f, "TIMESTAMP_S"),
            Timestamp(TimeUnit::Millis) => write!(f, "TIMESTAMP_MS"),
            Timestamp(TimeUnit::Micros) => write!(f, "TIMESTAMP"),
            Timestamp(TimeUnit::Nanos) => write!(f, "TIMESTAMP_NS"),
            TimestampTz => write!(f, "TIMESTAMP WITH TIME ZONE"),
            Interval => write!(f, "INTERVAL"),
            Uuid => write!(f, "UUID"),
            Enum { .. } => write!(f, "ENUM"),
            List(child) => write!(f, "{child}[]"),
            Array(child, size) => write!(f, "{child}[{size}]"),
            Struct(items) => fields(f, "STRUCT", items),
            Map(k, v) => write!(f, "MAP({k}, {v})"),
            Union(items) => fields(f, "UNION", items),
            Unsupported(name) => write!(f, "{name}"),
        }
    }
}

/// A Postgres type with its type modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    pub oid: Oid,
    pub typmod: i32,
}

impl PgType {
    /// `format_type_with_typemod`: the name a user would write, e.g. `numeric(18,3)`.
    pub fn sql_name(&self) -> String {
        // SAFETY: catalog lookup on the backend thread; the result is a palloc'd C string.
        unsafe {
            let name = pg_sys::format_type_with_typemod(self.oid, self.typmod);
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

fn out_of_range(what: &str) -> Error {
    Error::new(
        PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
        format!("DuckDB {what} is outside the range PostgreSQL supports"),
    )
}

/// Days from 1970-01-01 (DuckDB's epoch) to 2000-01-01 (Postgres's).
const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = EPOCH_DAYS as i64 * 86_400_000_000;

/// DuckDB date (days since 1970, ±i32::MAX = ±infinity) → Postgres DateADT.
pub fn pg_date(days: i32) -> Result<i32> {
    match days {
        i32::MAX => Ok(i32::MAX),            // DATEVAL_NOEND
        d if d == -i32::MAX => Ok(i32::MIN), // DATEVAL_NOBEGIN
        d => {
            let pg = d
                .checked_sub(EPOCH_DAYS)
                .ok_or_else(|| out_of_range("date"))?;
            // Postgres dates run from 4714-11-24 BC (Julian day 0) to 5874897-12-31.
            let min = -(pg_sys::POSTGRES_EPOCH_JDATE as i32);
            let end = pg_sys::DATE_END_JULIAN as i32 - pg_sys::POSTGRES_EPOCH_JDATE as i32;
            if pg < min || pg >= end {
                return Err(out_of_range("date"));
            }
            Ok(pg)
        }
    }
}

/// DuckDB timestamp in `unit` since 1970 (±i64::MAX = ±infinity) → Postgres Timestamp.
pub fn pg_timestamp(value: i64, unit: TimeUnit) -> Result<i64> {
    if value == i64::MAX {
        return Ok(i64::MAX); // DT_NOEND
    }
    if value == -i64::MAX {
        return Ok(i64::MIN); // DT_NOBEGIN
    }
    let micros = match unit {
        TimeUnit::Seconds => value.checked_mul(1_000_000),
        TimeUnit::Millis => value.checked_mul(1_000),
        TimeUnit::Micros => Some(value),
        TimeUnit::Nanos => Some(value.div_euclid(1_000)),
    }
    .ok_or_else(|| out_of_range("timestamp"))?;
    let pg = micros
        .checked_sub(EPOCH_MICROS)
        .ok_or_else(|| out_of_range("timestamp"))?;
    // MIN_TIMESTAMP (4714-11-24 BC) and END_TIMESTAMP (294277-01-01) of Postgres.
    const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
    const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
    if !(MIN_TIMESTAMP..END_TIMESTAMP).contains(&pg) {
        return Err(out_of_range("timestamp"));
    }
    Ok(pg)
}

/// DuckDB stores a UUID as a HUGEINT with the top bit flipped (so that it sorts); Postgres
/// stores the 16 bytes big-endian.
pub fn uuid_bytes(v: i128) -> [u8; 16] {
    ((v as u128) ^ (1u128 << 127)).to_be_bytes()
}

/// The parts of Postgres's numeric text (`-123.4500`): whether it is negative, the whole digits
/// without leading zeros and the fraction digits. None for NaN and infinities.
pub fn decimal_parts(text: &str) -> Option<(bool, &str, &str)> {
    let unsigned = text.strip_prefix('-');
    let negative = unsigned.is_some();
    let unsigned = unsigned.unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    Some((negative, whole.trim_start_matches('0'), fraction))
}

/// Exact decimal text of an integer scaled by 10^-scale, e.g. (12345, 2) → "123.45".
pub fn decimal_text(value: i128, scale: u8) -> String {
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// DuckDB BIT values are a padding-count byte followed by the bits, most significant first.
pub fn bit_text(raw: &[u8]) -> String {
    let Some((&padding, bytes)) = raw.split_first() else {
        return String::new();
    };
    let mut out = String::with_capacity(bytes.len() * 8);
    for b in bytes {
        for i in (0..8).rev() {
            out.push(if b & (1 << i) != 0 { '1' } else { '0' });
        }
    }
    out.split_off((padding as usize).min(out.len()))
}

/// Reads the integer at `row` of a vector of the given physical width.
///
/// # Safety
/// `width` must match the vector's physical type.
unsafe fn read_int(v: &Vector<'_>, row: usize, width: IntWidth) -> i128 {
    unsafe {
        match width {
            IntWidth::U8 => v.value::<u8>(row).into(),
            IntWidth::U16 => v.value::<u16>(row).into(),
            IntWidth::U32 => v.value::<u32>(row).into(),
            IntWidth::I16 => v.value::<i16>(row).into(),
            IntWidth::I32 => v.value::<i32>(row).into(),
            IntWidth::I64 => v.value::<i64>(row).into(),
            IntWidth::I128 => hugeint(v.value::<ffi::duckdb_hugeint>(row)),
        }
    }
}

fn hugeint(h: ffi::duckdb_hugeint) -> i128 {
    (i128::from(h.upper) << 64) | i128::from(h.lower)
}

fn uhugeint(h: ffi::duckdb_uhugeint) -> u128 {
    (u128::from(h.upper) << 64) | u128::from(h.lower)
}

/// One scalar value read out of a DuckDB vector, before it becomes a datum or JSON.
pub enum Scalar<'a> {
    Bool(bool),
    Int(i128),
    UInt(u128),
    Float(f64),
    Float4(f32),
    Decimal(i128, u8),
    Text(&'a [u8]),
    Json(&'a [u8]),
    Enum(&'a str),
    Bytes(&'a [u8]),
    Bits(String),
    Date(i32),
    Time(i64),
    TimeTz { micros: i64, offset_seconds: i32 },
    Timestamp(i64, TimeUnit),
    TimestampTz(i64),
    Interval { months: i32, days: i32, micros: i64 },
    Uuid(i128),
}

impl DuckType {
    /// Reads the scalar at `row` (which must be valid, i.e. not NULL).
    ///
    /// # Safety
    /// `v` must be a vector of this type and `row` within its length.
    pub unsafe fn read_scalar<'a>(&'a self, v: &Vector<'a>, row: usize) -> Scalar<'a> {
        use DuckType::*;
        unsafe {
            match self {
                Boolean => Scalar::Bool(v.value::<bool>(row)),
                TinyInt => Scalar::Int(v.value::<i8>(row).into()),
                SmallInt => Scalar::Int(v.value::<i16>(row).into()),
                Integer => Scalar::Int(v.value::<i32>(row).into()),
                BigInt => Scalar::Int(v.value::<i64>(row).into()),
                UTinyInt => Scalar::Int(v.value::<u8>(row).into()),
                USmallInt => Scalar::Int(v.value::<u16>(row).into()),
                UInteger => Scalar::Int(v.value::<u32>(row).into()),
                UBigInt => Scalar::UInt(v.value::<u64>(row).into()),
                HugeInt => Scalar::Int(hugeint(v.value(row))),
                UHugeInt => Scalar::UInt(uhugeint(v.value(row))),
                Float => Scalar::Float4(v.value::<f32>(row)),
                Double => Scalar::Float(v.value::<f64>(row)),
                Decimal {
                    scale, physical, ..
                } => Scalar::Decimal(read_int(v, row, *physical), *scale),
                Varchar | Null => Scalar::Text(v.bytes(row)),
                Json => Scalar::Json(v.bytes(row)),
                Blob => Scalar::Bytes(v.bytes(row)),
                Bit => Scalar::Bits(bit_text(v.bytes(row))),
                Date => Scalar::Date(v.value::<i32>(row)),
                Time => Scalar::Time(v.value::<i64>(row)),
                TimeNs => Scalar::Time(v.value::<i64>(row).div_euclid(1_000)),
                TimeTz => {
                    let parts = ffi::duckdb_from_time_tz(v.value::<ffi::duckdb_time_tz>(row));
                    let t = parts.time;
                    let micros = ((i64::from(t.hour) * 60 + i64::from(t.min)) * 60
                        + i64::from(t.sec))
                        * 1_000_000
                        + i64::from(t.micros);
                    Scalar::TimeTz {
                        micros,
                        offset_seconds: parts.offset,
                    }
                }
                Timestamp(unit) => Scalar::Timestamp(v.value::<i64>(row), *unit),
                TimestampTz => Scalar::TimestampTz(v.value::<i64>(row)),
                Interval => {
                    let i = v.value::<ffi::duckdb_interval>(row);
                    Scalar::Interval {
                        months: i.months,
                        days: i.days,
                        micros: i.micros,
                    }
                }
                Uuid => Scalar::Uuid(hugeint(v.value(row))),
                Enum {
                    physical,
                    dictionary,
                } => {
                    let index = read_int(v, row, *physical) as usize;
                    Scalar::Enum(dictionary.get(index).map(String::as_str).unwrap_or(""))
                }
                List(_) | Array(..) | Struct(_) | Map(..) | Union(_) | Unsupported(_) => {
                    unreachable!("read_scalar is only called for scalar types")
                }
            }
        }
    }
}
