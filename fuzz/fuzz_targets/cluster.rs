#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multipeer_fuzz::cluster(data));
