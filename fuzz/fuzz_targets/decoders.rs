//! libFuzzer target `decoders`: the body is qemu_glue::fuzzing::decoders, which
//! qemu-glue/tests/fuzz_corpus.rs also drives on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qemu_glue::fuzzing::decoders(data);
});
