//! What the fuzz targets share: how one fuzz input is cut into the several texts a parser call takes.

/// The parts of an input separated by NUL bytes (never part of a JSON text, a filter pattern or rule SQL in
/// practice, and easy to write in a seed: `printf 'SELECT * FROM \x27a\x27\0{"a":1}'`), each as UTF-8 with
/// invalid bytes replaced, since every parser here takes a `&str` that arrived as UTF-8.
pub fn parts(data: &[u8]) -> Vec<String> {
    data.split(|byte| *byte == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}
