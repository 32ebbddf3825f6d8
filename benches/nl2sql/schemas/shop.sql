-- The evaluation schema: a small shop with customers, products, orders, reviews and staff.
-- Deterministic data (no random()), with NULLs, dates over two years and self-references.
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
SET search_path = shop;

CREATE TABLE customers (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text,
    country text NOT NULL,
    city text NOT NULL,
    signed_up date NOT NULL,
    referred_by int REFERENCES customers
);
COMMENT ON TABLE customers IS 'People who buy from the shop';
COMMENT ON COLUMN customers.country IS 'ISO 3166 two-letter country code, e.g. FR, DE, US';
COMMENT ON COLUMN customers.referred_by IS 'The customer who recommended the shop, if any';

CREATE TABLE products (
    id int PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL,
    discontinued boolean NOT NULL DEFAULT false
);

CREATE TABLE orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    ordered_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    shipped_at timestamptz
);
COMMENT ON COLUMN orders.shipped_at IS 'NULL until the order ships';

CREATE TABLE order_items (
    order_id int NOT NULL REFERENCES orders,
    product_id int NOT NULL REFERENCES products,
    quantity int NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE reviews (
    id int PRIMARY KEY,
    product_id int NOT NULL REFERENCES products,
    customer_id int NOT NULL REFERENCES customers,
    rating int NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body text,
    created_on date NOT NULL
);

CREATE TABLE employees (
    id int PRIMARY KEY,
    name text NOT NULL,
    department text NOT NULL,
    manager_id int REFERENCES employees,
    salary numeric(10, 2) NOT NULL,
    hired_on date NOT NULL
);

INSERT INTO customers
SELECT g, 'Customer ' || g,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
       (ARRAY['FR', 'DE', 'US', 'UK', 'ES'])[g % 5 + 1],
       (ARRAY['Paris', 'Berlin', 'Boston', 'Leeds', 'Madrid', 'Lyon', 'Munich'])[g % 7 + 1],
       date '2025-01-01' + (g * 7) % 365,
       CASE WHEN g % 4 = 0 THEN g - 1 END
  FROM generate_series(1, 50) g;

INSERT INTO products
SELECT g, 'Product ' || g, (ARRAY['books', 'games', 'tools', 'garden'])[g % 4 + 1],
       (g * 3.5 + 2)::numeric(10, 2), g % 9 = 0
  FROM generate_series(1, 20) g;

INSERT INTO orders
SELECT g, (g * 7) % 45 + 1,
       timestamptz '2025-01-01 10:00:00+00' + ((g * 29) % 600) * interval '1 day' + (g % 11) * interval '1 hour',
       (ARRAY['paid', 'shipped', 'cancelled', 'pending', 'shipped'])[g % 5 + 1],
       NULL
  FROM generate_series(1, 300) g;
UPDATE orders SET shipped_at = ordered_at + (id % 6 + 1) * interval '1 day' WHERE status = 'shipped';

INSERT INTO order_items
SELECT o, p, (o + k) % 4 + 1, (SELECT price FROM products WHERE id = p)
  FROM generate_series(1, 300) o, generate_series(0, 2) k,
       LATERAL (SELECT (o * 3 + k * 5) % 20 + 1 AS p) x
 WHERE k < 2 OR o % 3 = 0;

INSERT INTO reviews
SELECT g, (g * 11) % 17 + 1, (g * 13) % 50 + 1, g % 5 + 1,
       CASE WHEN g % 6 = 0 THEN NULL ELSE 'Review ' || g END,
       date '2025-02-01' + (g * 5) % 500
  FROM generate_series(1, 120) g;

INSERT INTO employees VALUES
  (1, 'Ada', 'management', NULL, 9000, '2020-03-01'),
  (2, 'Ben', 'sales', 1, 5200, '2021-06-15'),
  (3, 'Cleo', 'sales', 2, 4100, '2023-01-09'),
  (4, 'Dan', 'sales', 2, 4300, '2024-04-22'),
  (5, 'Eve', 'support', 1, 4800, '2022-09-01'),
  (6, 'Finn', 'support', 5, 3900, '2024-11-30'),
  (7, 'Gus', 'support', 5, 5100, '2024-02-14'),
  (8, 'Hana', 'warehouse', 1, 4500, '2021-01-04'),
  (9, 'Ivo', 'warehouse', 8, 3600, '2025-03-03'),
  (10, 'Jo', 'warehouse', 8, 3700, '2024-07-19');
ANALYZE;
