//! libFuzzer target `vfio_user_stream`: the body is qemu_glue::fuzzing::vfio_user_stream, which
//! qemu-glue/tests/fuzz_corpus.rs also drives on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    qemu_glue::fuzzing::vfio_user_stream(data);
});
