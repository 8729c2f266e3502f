//! Turning a caught panic into the message stored as a failure's cause (a decoder that panics on a hostile
//! file fails that file or scene, with what it said).

/// The text a panic was raised with, or "no message" when it carried something else.
pub fn message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_kinds_of_panic_payload_give_their_text() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(super::message(literal.as_ref()), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("rate {}", 0)).unwrap_err();
        assert_eq!(super::message(formatted.as_ref()), "rate 0");
    }
}
