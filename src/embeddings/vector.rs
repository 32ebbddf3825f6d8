//! pgvector values built directly in Postgres memory: no text round trip for thousands of
//! floats per row.
//!
//! pgvector's `vector` is a varlena `{int32 vl_len_; int16 dim; int16 unused; float4 x[dim]}`.

use pgrx::pg_sys::{self, Datum, Oid};

const HEADER: usize = 8;

/// A `vector` datum holding `values` (palloc'd in the current memory context).
pub fn datum(values: &[f32]) -> Datum {
    let size = HEADER + std::mem::size_of_val(values);
    // SAFETY: palloc0 returns `size` zeroed bytes (or raises); we fill exactly the layout above.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::set_varsize_4b(ptr.cast(), size as i32);
        ptr.add(4)
            .cast::<i16>()
            .write_unaligned(values.len() as i16);
        std::ptr::copy_nonoverlapping(values.as_ptr().cast::<u8>(), ptr.add(HEADER), size - HEADER);
        Datum::from(ptr)
    }
}

/// A one-dimensional array of `vector_type` values; `None` entries are NULLs.
pub fn array_datum(vectors: &[Option<&[f32]>], vector_type: Oid) -> Datum {
    let mut datums: Vec<Datum> = Vec::with_capacity(vectors.len());
    let mut nulls: Vec<bool> = Vec::with_capacity(vectors.len());
    for v in vectors {
        datums.push(v.map(datum).unwrap_or(Datum::from(0)));
        nulls.push(v.is_none());
    }
    let mut dims = [vectors.len() as i32];
    let mut lower = [1];
    let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    // SAFETY: the arrays above live until construct_md_array has copied them.
    unsafe {
        pg_sys::get_typlenbyvalalign(vector_type, &mut len, &mut byval, &mut align);
        let array = pg_sys::construct_md_array(
            datums.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lower.as_mut_ptr(),
            vector_type,
            len as i32,
            byval,
            align,
        );
        Datum::from(array)
    }
}
