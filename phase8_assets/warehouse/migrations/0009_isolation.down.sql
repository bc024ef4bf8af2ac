DROP TABLE isolation_results;
