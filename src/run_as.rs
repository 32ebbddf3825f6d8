//! Running a piece of work as another role, the way SECURITY DEFINER functions do.
//!
//! Used to read and write llm_sql's own tables as their owner (roles have no privilege on them)
//! and to let the embedding worker write as the role that set up auto-embedding, never as more.

use pgrx::pg_sys::{self, Oid};

/// Runs `f` as `role`, then switches back (also on error: Postgres restores the user at
/// (sub)transaction abort, and the guard does it when unwinding). Security-restricted, like a
/// SECURITY DEFINER function called from an index expression: no temp objects, no SET ROLE.
pub fn run_as<T>(role: Oid, f: impl FnOnce() -> T) -> T {
    struct Restore(Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the user and security context saved below.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let (mut user, mut context) = (Oid::INVALID, 0);
    // SAFETY: plain reads and writes of the backend's current user id.
    let _restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        Restore(user, context)
    };
    f()
}

/// The role running the current statement.
pub fn current_user() -> Oid {
    // SAFETY: reads the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}
