-- Cost exports loaded, one row per (root, path): a re-delivered file (same path, new content)
-- replaces the rows of its previous content.
CREATE TABLE cost_files (
    root    VARCHAR   NOT NULL,
    uri     VARCHAR   NOT NULL,
    sha256  VARCHAR   NOT NULL,
    rows    BIGINT    NOT NULL,
    read_at TIMESTAMP NOT NULL,
    PRIMARY KEY (root, uri)
);

-- FOCUS line items in canonical columns (costs as exact decimals; credits are negative).
CREATE TABLE cost_line_items (
    root             VARCHAR        NOT NULL,
    sha256           VARCHAR        NOT NULL,
    billing_period   VARCHAR        NOT NULL,   -- YYYY-MM
    provider         VARCHAR,
    billing_account  VARCHAR,
    sub_account      VARCHAR,
    charge_day       DATE           NOT NULL,
    charge_category  VARCHAR,
    service_category VARCHAR,
    service_name     VARCHAR,
    resource_id      VARCHAR,
    currency         VARCHAR        NOT NULL,
    billed           DECIMAL(38, 12) NOT NULL,
    effective        DECIMAL(38, 12) NOT NULL,
    tags             VARCHAR                     -- the export's tags, JSON
);

-- Budget threshold crossings, recorded once per budget, month, basis and threshold.
CREATE TABLE budget_alerts (
    root        VARCHAR   NOT NULL,
    budget      VARCHAR   NOT NULL,
    month       VARCHAR   NOT NULL,   -- YYYY-MM
    basis       VARCHAR   NOT NULL,   -- actual | forecast
    threshold   DOUBLE    NOT NULL,   -- 0.8 = 80 % of the budget
    value       DOUBLE    NOT NULL,   -- spend (or forecast) when first seen
    amount      DOUBLE    NOT NULL,   -- the budget
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (root, budget, month, basis, threshold)
);

-- Attributed cost per day, currency, tenant, team and service category, recomputed whole for a
-- root on every run (attributed + unallocated = the line items, to the cent, per day and currency).
CREATE TABLE cost_attribution (
    root             VARCHAR         NOT NULL,
    charge_day       DATE            NOT NULL,
    currency         VARCHAR         NOT NULL,
    tenant           VARCHAR         NOT NULL,   -- __unallocated__ when no tenant could be found
    team             VARCHAR,
    service_category VARCHAR,
    source           VARCHAR         NOT NULL,   -- direct | shared:<rule> | unallocated
    billed           DECIMAL(38, 12) NOT NULL,
    effective        DECIMAL(38, 12) NOT NULL
);
