DROP TABLE cost_attribution;
DROP TABLE budget_alerts;
DROP TABLE cost_line_items;
DROP TABLE cost_files;
