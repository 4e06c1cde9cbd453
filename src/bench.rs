//! Benchmarks: condgen against PyTorch on the same models, side by side.
