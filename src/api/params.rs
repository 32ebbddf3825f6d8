//! Parameters of `llm_sql.query(sql, VARIADIC params "any")`, `query_json` and `execute`: the
//! Postgres values after the SQL, converted to DuckDB values and bound to `$1…$n`. They are
//! never spliced into the SQL text.

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

use crate::engine::ffi::Param;
use crate::error::{Error, Result};

/// Days and microseconds between 1970-01-01 (DuckDB's epoch) and 2000-01-01 (Postgres's).
const EPOCH_DAYS: i32 = 10_957;
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The values of arguments `first..` of a VARIADIC "any" function, in order. A call with
/// `VARIADIC array` passes one array: its elements are the values.
///
/// # Safety
/// `fcinfo` is the current call's, declared with VARIADIC "any" from argument `first` on.
pub unsafe fn variadic(fcinfo: pg_sys::FunctionCallInfo, first: usize) -> Result<Vec<Param>> {
    // SAFETY: reads this call's arguments and their types from its expression.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let nargs = (*fcinfo).nargs as usize;
        if nargs <= first {
            return Ok(Vec::new());
        }
        let arg = |i: usize| *(*fcinfo).args.as_ptr().add(i);
        if pg_sys::get_fn_expr_variadic(flinfo) {
            let array = arg(first);
            if array.isnull {
                return Ok(Vec::new());
            }
            let array_type = pg_sys::get_fn_expr_argtype(flinfo, first as i32);
            return array_elements(array.value, pg_sys::get_element_type(array_type));
        }
        (first..nargs)
            .map(|i| {
                let value = arg(i);
                let type_oid = pg_sys::get_fn_expr_argtype(flinfo, i as i32);
                param(value.value, value.isnull, type_oid, i - first + 1)
            })
            .collect()
    }
}

/// The elements of a one-dimensional array datum of `element_type`.
unsafe fn array_elements(array: pg_sys::Datum, element_type: Oid) -> Result<Vec<Param>> {
    // SAFETY: deconstructs a detoasted array of the declared element type.
    unsafe {
        let array = pg_sys::pg_detoast_datum(array.cast_mut_ptr()).cast::<pg_sys::ArrayType>();
        let (mut length, mut by_value, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(element_type, &mut length, &mut by_value, &mut align);
        let (mut values, mut nulls, mut count) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(
            array,
            element_type,
            length.into(),
            by_value,
            align,
            &mut values,
            &mut nulls,
            &mut count,
        );
        (0..count as usize)
            .map(|i| param(*values.add(i), *nulls.add(i), element_type, i + 1))
            .collect()
    }
}

/// One Postgres value as a DuckDB value: numbers, booleans, text, dates and timestamps as
/// themselves (numeric exactly, as DECIMAL, when it has at most 38 digits), anything else as
/// its text, which DuckDB casts to the type the parameter needs.
unsafe fn param(
    datum: pg_sys::Datum,
    is_null: bool,
    type_oid: Oid,
    position: usize,
) -> Result<Param> {
    if is_null {
        return Ok(Param::Null);
    }
    // SAFETY: `datum` is a non-NULL value of `type_oid`.
    unsafe {
        Ok(match type_oid {
            pg_sys::BOOLOID => Param::Bool(bool::from_datum(datum, false).unwrap_or(false)),
            pg_sys::INT2OID => Param::Int(i16::from_datum(datum, false).unwrap_or(0).into()),
            pg_sys::INT4OID => Param::Int(i32::from_datum(datum, false).unwrap_or(0).into()),
            pg_sys::INT8OID => Param::Int(i64::from_datum(datum, false).unwrap_or(0)),
            pg_sys::FLOAT4OID => Param::Float(f32::from_datum(datum, false).unwrap_or(0.0).into()),
            pg_sys::FLOAT8OID => Param::Float(f64::from_datum(datum, false).unwrap_or(0.0)),
            pg_sys::DATEOID => match datum.value() as i32 {
                days @ (i32::MIN | i32::MAX) => {
                    Param::Text(output(pg_sys::Datum::from(days), type_oid))
                }
                days => Param::Date(days + EPOCH_DAYS),
            },
            pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID => {
                let micros = datum.value() as i64;
                let finite = micros != i64::MIN && micros != i64::MAX;
                match (finite, type_oid == pg_sys::TIMESTAMPOID) {
                    (true, true) => Param::Timestamp(micros + EPOCH_MICROS),
                    (true, false) => Param::TimestampTz(micros + EPOCH_MICROS),
                    (false, _) => Param::Text(output(datum, type_oid)),
                }
            }
            pg_sys::NUMERICOID => decimal(&output(datum, type_oid)),
            // A literal without a type (`query('…', 'abc')`) arrives as a C string.
            pg_sys::UNKNOWNOID => Param::Text(
                std::ffi::CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>())
                    .to_str()
                    .map_err(|_| {
                        Error::invalid_parameter(format!(
                            "parameter ${position} is not valid UTF-8"
                        ))
                    })?
                    .to_string(),
            ),
            _ => Param::Text(output(datum, type_oid)),
        })
    }
}

/// A value's text, by its type's output function.
unsafe fn output(datum: pg_sys::Datum, type_oid: Oid) -> String {
    // SAFETY: the type's own output function on a value of that type.
    unsafe {
        let (mut function, mut varlena) = (Oid::INVALID, false);
        pg_sys::getTypeOutputInfo(type_oid, &mut function, &mut varlena);
        let text = pg_sys::OidOutputFunctionCall(function, datum);
        std::ffi::CStr::from_ptr(text)
            .to_string_lossy()
            .into_owned()
    }
}

/// numeric text as an exact DECIMAL when it has at most 38 digits; otherwise (and for NaN and
/// infinities) its text.
fn decimal(text: &str) -> Param {
    let Some((negative, whole, fraction)) = crate::engine::types::decimal_parts(text) else {
        return Param::Text(text.to_string());
    };
    // (A value below 1 still needs one digit before the point in DuckDB's width.)
    let width = (whole.len() + fraction.len()).max(fraction.len() + 1);
    let digits = format!("0{whole}{fraction}");
    match digits.parse::<i128>() {
        Ok(value) if width <= 38 => Param::Decimal(
            if negative { -value } else { value },
            width as u8,
            fraction.len() as u8,
        ),
        _ => Param::Text(text.to_string()),
    }
}
