/// Whether text cells that a spreadsheet would treat as a formula are defused ("CSV injection", OWASP).
public enum FormulaSafety: Sendable, Hashable {
    /// A text cell whose first byte is `=`, `+`, `-`, `@`, TAB (0x09) or CR (0x0D) is written with a leading
    /// apostrophe: `=1+1` becomes `'=1+1`, `-5` becomes `'-5`. The default: for files people open in a spreadsheet.
    case neutralize
    /// Text is written exactly as given (quoted as RFC 4180 requires): for data pipelines.
    case raw
}
