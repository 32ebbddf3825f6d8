-- A small SaaS business: accounts, plans, trials, subscriptions, monthly invoices, product usage and support tickets,
-- spread over 2023-01-01 .. 2025-06-30 (timestamps in UTC).
-- Hard parts: date arithmetic (months, quarters, weekdays, "active on a date", days to pay, resolution hours),
-- NULL-means-still-open columns (cancelled_on, paid_on, closed_at), ratios, medians, year-over-year and running totals.
DROP SCHEMA IF EXISTS dates CASCADE;
CREATE SCHEMA dates;
SET search_path = dates;

CREATE TABLE plans (
    id int PRIMARY KEY,
    name text NOT NULL UNIQUE,
    monthly_price numeric(10, 2) NOT NULL
);
COMMENT ON TABLE plans IS 'Price plans that customers can subscribe to';
COMMENT ON COLUMN plans.monthly_price IS 'List price per month in USD, before any discount';

CREATE TABLE accounts (
    id int PRIMARY KEY,
    name text NOT NULL UNIQUE,
    country text NOT NULL,
    signed_up_on date NOT NULL
);
COMMENT ON TABLE accounts IS 'Customer companies (and prospects) that registered on the product';
COMMENT ON COLUMN accounts.country IS 'ISO 3166 two-letter country code';
COMMENT ON COLUMN accounts.signed_up_on IS 'Day the account was created (sign-up)';

CREATE TABLE subscriptions (
    id int PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts,
    plan_id int NOT NULL REFERENCES plans,
    started_on date NOT NULL,
    cancelled_on date,
    discount_percent numeric(5, 2) NOT NULL DEFAULT 0,
    CHECK (cancelled_on IS NULL OR cancelled_on > started_on)
);
COMMENT ON TABLE subscriptions IS 'Paid subscriptions; an account is a paying customer while it has an active subscription';
COMMENT ON COLUMN subscriptions.cancelled_on IS 'Day the subscription ended (no longer active from that day on); NULL while still active';
COMMENT ON COLUMN subscriptions.discount_percent IS 'Negotiated discount applied to every invoice of the subscription, e.g. 10 = 10 %';

CREATE TABLE trials (
    id int PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts,
    plan_id int NOT NULL REFERENCES plans,
    started_on date NOT NULL,
    ends_on date NOT NULL,
    subscription_id int REFERENCES subscriptions
);
COMMENT ON TABLE trials IS 'Free 14-day trials of a plan';
COMMENT ON COLUMN trials.ends_on IS 'Last day of the free trial';
COMMENT ON COLUMN trials.subscription_id IS 'The paid subscription the trial converted into; NULL if the trial did not convert';

CREATE TABLE invoices (
    id int PRIMARY KEY,
    subscription_id int NOT NULL REFERENCES subscriptions,
    issued_on date NOT NULL,
    due_on date NOT NULL,
    paid_on date,
    amount numeric(10, 2) NOT NULL
);
COMMENT ON TABLE invoices IS 'Monthly invoices of subscriptions';
COMMENT ON COLUMN invoices.due_on IS 'Payment deadline; an invoice paid after this day was paid late';
COMMENT ON COLUMN invoices.paid_on IS 'Day the payment was received; NULL while unpaid';
COMMENT ON COLUMN invoices.amount IS 'Amount billed in USD (plan price minus discount)';

CREATE TABLE usage_events (
    id int PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts,
    feature text NOT NULL,
    occurred_at timestamptz NOT NULL,
    duration_seconds int NOT NULL
);
COMMENT ON TABLE usage_events IS 'One row per session in which a user of an account used a product feature';
COMMENT ON COLUMN usage_events.feature IS 'dashboard, reports, export, api or integrations';
COMMENT ON COLUMN usage_events.duration_seconds IS 'Length of the session in seconds';

CREATE TABLE support_tickets (
    id int PRIMARY KEY,
    account_id int NOT NULL REFERENCES accounts,
    category text NOT NULL,
    priority text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    CHECK (closed_at IS NULL OR closed_at > opened_at)
);
COMMENT ON TABLE support_tickets IS 'Support requests raised by customers';
COMMENT ON COLUMN support_tickets.closed_at IS 'When the ticket was resolved; NULL while still open';

INSERT INTO plans VALUES
  (1, 'Starter', 29.00),
  (2, 'Team', 79.00),
  (3, 'Business', 199.00),
  (4, 'Enterprise', 499.00);

-- 150 regular accounts, one every ~6 days, plus a sign-up campaign in March 2024.
INSERT INTO accounts
SELECT g,
       (ARRAY['Acme', 'Blue', 'Cedar', 'Delta', 'Ember', 'Falcon', 'Granite', 'Harbor', 'Indigo', 'Juniper',
              'Kestrel', 'Lumen', 'Maple', 'Nimbus', 'Orchid'])[g % 15 + 1] || ' ' ||
       (ARRAY['Labs', 'Systems', 'Works', 'Analytics', 'Logistics', 'Studio', 'Health', 'Foods', 'Capital',
              'Media', 'Robotics'])[g % 11 + 1],
       (ARRAY['US', 'DE', 'FR', 'GB', 'NL', 'ES', 'CA'])[g % 7 + 1],
       date '2023-01-02' + g * 6 + (g * g * 7) % 5
  FROM generate_series(1, 150) g;
INSERT INTO accounts VALUES
  (151, 'Pioneer Labs', 'US', '2024-03-05'),
  (152, 'Quartz Systems', 'DE', '2024-03-08'),
  (153, 'Riverbend Analytics', 'GB', '2024-03-12'),
  (154, 'Summit Media', 'US', '2024-03-19'),
  (155, 'Tidal Works', 'FR', '2024-03-22'),
  (156, 'Umber Foods', 'NL', '2024-03-27');

-- Accounts whose id is a multiple of 5 subscribe directly (no trial); the others start a 14-day trial on sign-up day,
-- and about half of those convert a few days later.
INSERT INTO subscriptions
SELECT row_number() OVER (ORDER BY started_on, a), a, plan_id, started_on,
       CASE WHEN (a * 53) % 100 < 45 AND started_on + 100 + (a * 41) % 480 < date '2025-06-30'
            THEN started_on + 100 + (a * 41) % 480 END,
       CASE a % 6 WHEN 0 THEN 20 WHEN 3 THEN 10 ELSE 0 END
  FROM (SELECT id AS a,
               CASE WHEN id % 5 = 0 THEN (ARRAY[3, 4, 2, 3, 4])[(id / 5) % 5 + 1]
                    ELSE (ARRAY[1, 1, 2, 2, 3, 1, 2])[id % 7 + 1] END AS plan_id,
               CASE WHEN id % 5 = 0 THEN signed_up_on
                    ELSE signed_up_on + 5 + (id * 3) % 18 END AS started_on
          FROM accounts
         WHERE id % 5 = 0 OR (id * 37) % 100 < 55) s
 WHERE started_on <= date '2025-06-30';

INSERT INTO trials
SELECT row_number() OVER (ORDER BY a.signed_up_on, a.id), a.id,
       (ARRAY[1, 1, 2, 2, 3, 1, 2])[a.id % 7 + 1], a.signed_up_on, a.signed_up_on + 13, s.id
  FROM accounts a LEFT JOIN subscriptions s ON s.account_id = a.id
 WHERE a.id % 5 <> 0;

-- One invoice per started month of subscription, due 14 days after issue.
INSERT INTO invoices (id, subscription_id, issued_on, due_on, amount)
SELECT row_number() OVER (ORDER BY issued_on, s.id), s.id, issued_on, issued_on + 14,
       round(p.monthly_price * (100 - s.discount_percent) / 100, 2)
  FROM subscriptions s
  JOIN plans p ON p.id = s.plan_id
  CROSS JOIN LATERAL generate_series(0, 30) k
  CROSS JOIN LATERAL (SELECT (s.started_on + k * interval '1 month')::date AS issued_on) d
 WHERE issued_on < coalesce(s.cancelled_on, date '2025-07-01');
-- Most invoices are paid within 12 days, ~30 % late; a few are never paid; nothing is paid after 2025-06-30.
UPDATE invoices SET paid_on = x.paid
  FROM (SELECT id, issued_on + CASE WHEN id % 10 < 7 THEN 1 + (id * 3) % 12 ELSE 15 + (id * 7) % 30 END AS paid
          FROM invoices) x
 WHERE x.id = invoices.id AND invoices.id % 31 <> 0 AND x.paid <= date '2025-06-30';

-- Usage sessions every few days while the subscription is active.
INSERT INTO usage_events
SELECT row_number() OVER (ORDER BY occurred_at, account_id), account_id, feature, occurred_at, duration_seconds
  FROM (SELECT s.account_id,
               (ARRAY['dashboard', 'reports', 'export', 'api', 'integrations'])[(k * 3 + s.id) % 5 + 1] AS feature,
               ((s.started_on + k * (6 + s.id % 6)) + make_interval(hours => 8 + (k + s.id) % 10, mins => (k * 13 + s.id) % 60))
                   AT TIME ZONE 'UTC' AS occurred_at,
               CASE (k * 3 + s.id) % 5
                    WHEN 0 THEN 60 + (k * 37 + s.id * 11) % 840
                    WHEN 1 THEN 120 + (k * 53 + s.id * 7) % 1680
                    WHEN 2 THEN 10 + (k * 29 + s.id * 5) % 290
                    WHEN 3 THEN 5 + (k * 17 + s.id * 3) % 55
                    ELSE 300 + (k * 71 + s.id * 13) % 2100 END AS duration_seconds
          FROM subscriptions s
          CROSS JOIN LATERAL generate_series(0, 200) k
         WHERE s.started_on + k * (6 + s.id % 6) < coalesce(s.cancelled_on, date '2025-07-01')) u;

-- Support tickets every month or two while the subscription is active; resolution time depends on priority.
INSERT INTO support_tickets
SELECT row_number() OVER (ORDER BY opened_at, account_id), account_id, category, priority, opened_at,
       CASE WHEN closed_at < timestamptz '2025-06-30 18:00:00+00'
             AND NOT (opened_at >= timestamptz '2025-05-20 00:00:00+00' AND (k + a) % 3 = 0) THEN closed_at END
  FROM (SELECT account_id, a, k, category, priority, opened_at,
               opened_at + make_interval(mins => CASE priority
                    WHEN 'urgent' THEN 45 + (k * 37 + a) % 600
                    WHEN 'high' THEN 120 + (k * 53 + a * 7) % 1800
                    WHEN 'normal' THEN 300 + (k * 71 + a * 11) % 4000
                    ELSE 600 + (k * 97 + a * 13) % 9000 END) AS closed_at
          FROM (SELECT s.account_id, s.account_id AS a, k,
                       (ARRAY['billing', 'bug', 'how-to', 'account', 'feature request'])[(k * 2 + s.account_id) % 5 + 1] AS category,
                       (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[(k + s.account_id) % 5 + 1] AS priority,
                       ((s.started_on + 3 + s.account_id % 17 + k * (35 + s.account_id % 40))
                         + make_interval(hours => 7 + (k * 5 + s.account_id) % 11, mins => (k * 19 + s.account_id * 7) % 60))
                         AT TIME ZONE 'UTC' AS opened_at
                  FROM subscriptions s
                  CROSS JOIN LATERAL generate_series(0, 40) k
                 WHERE s.started_on + 3 + s.account_id % 17 + k * (35 + s.account_id % 40)
                       < least(coalesce(s.cancelled_on, date '2025-07-01'), date '2025-07-01')) t) c;

ANALYZE;
