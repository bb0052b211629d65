//! libFuzzer target `device_accesses`: the body is qemu_glue::fuzzing::device_accesses, which
//! qemu-glue/tests/fuzz_corpus.rs also drives on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qemu_glue::fuzzing::device_accesses(data);
});
