//! Audio front end: waveform to the log spectrogram the audio encoder reads.

pub mod spectrogram;
