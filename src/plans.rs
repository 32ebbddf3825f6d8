//! SPI plans kept across transactions, for the statements that backfill and the embedding
//! queue run once per batch: parsing and planning them anew for every batch cost about as much
//! as writing a batch of 64 rows. Postgres's plan cache revalidates a kept plan after DDL on
//! the objects it uses, and after a role change when row-level security applies.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};
use pgrx::PgOid;

/// Most plans kept per backend; past this the cache starts over.
const MAX_PLANS: usize = 64;

thread_local! {
    static PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// The kept plan of `sql` with parameter types `args`, prepared on first use. `mutating` for
/// statements that write.
pub fn kept(
    client: &SpiClient,
    sql: &str,
    args: &[PgOid],
    mutating: bool,
) -> SpiResult<Rc<OwnedPreparedStatement>> {
    let key = format!("{mutating} {args:?} {sql}");
    if let Some(plan) = PLANS.with(|plans| plans.borrow().get(&key).cloned()) {
        return Ok(plan);
    }
    let prepared = match mutating {
        true => client.prepare_mut(sql, args)?,
        false => client.prepare(sql, args)?,
    };
    let plan = Rc::new(prepared.keep());
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(key, Rc::clone(&plan));
    });
    Ok(plan)
}
