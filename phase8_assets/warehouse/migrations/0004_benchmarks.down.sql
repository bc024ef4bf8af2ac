DROP TABLE perf_change_points;
DROP TABLE bench_samples;
DROP TABLE bench_results;
DROP TABLE bench_runs;
