DROP TABLE gate_run_results;
DROP TABLE gate_runs;
