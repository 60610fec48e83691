//! The Rust side of `csrc/cabi.h`: shim calls that report failure as -1 plus a malloc'd message.

use std::os::raw::c_char;

extern "C" {
    fn ryolo_dist_free_str(s: *mut c_char);
}

/// Takes ownership of a message a shim allocated.
///
/// # Safety
/// `p` is null or a string returned by a shim and not yet freed.
pub unsafe fn take_str(p: *mut c_char) -> String {
    if p.is_null() {
        return "unknown error (no message)".into();
    }
    let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
    ryolo_dist_free_str(p);
    s
}

/// Runs one shim call (`f` gets the message out-pointer; 0 is success), returning its message on
/// failure.
pub fn call(f: impl FnOnce(*mut *mut c_char) -> i32) -> Result<(), String> {
    let mut err: *mut c_char = std::ptr::null_mut();
    if f(&mut err) == 0 {
        Ok(())
    } else {
        // SAFETY: on failure the shim hands over a message (or null).
        Err(unsafe { take_str(err) })
    }
}
