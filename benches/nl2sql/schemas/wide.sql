-- A wide mid-size company ERP (Nordwerk Group): 62 tables across HR, sales, inventory, purchasing,
-- projects, support, fleet, facilities, finance, marketing and assets. What makes it hard is picking
-- the right table: many tables share names like name/code/status/created_at, and look-alikes abound
-- (quotes/sales_orders/invoices, customer_contacts/supplier_contacts/leads, departments/cost_centres,
-- sites/warehouses/rooms, stock_levels/stock_movements, asset_maintenance/vehicle_maintenance, budgets).
DROP SCHEMA IF EXISTS wide CASCADE;
CREATE SCHEMA wide;
SET search_path = wide;

-- ===================================================================== reference data
CREATE TABLE currencies (
    id int PRIMARY KEY,
    code char(3) NOT NULL UNIQUE,
    name text NOT NULL,
    symbol text NOT NULL
);
COMMENT ON TABLE currencies IS 'ISO 4217 currencies used by customers, suppliers and payroll';

CREATE TABLE countries (
    id int PRIMARY KEY,
    code char(2) NOT NULL UNIQUE,
    name text NOT NULL,
    region text NOT NULL,
    currency_id int NOT NULL REFERENCES currencies
);
COMMENT ON COLUMN countries.code IS 'ISO 3166 two-letter code';
COMMENT ON COLUMN countries.region IS 'Europe, North America, South America, Asia or Oceania';

CREATE TABLE exchange_rates (
    id int PRIMARY KEY,
    currency_id int NOT NULL REFERENCES currencies,
    rate_date date NOT NULL,
    rate_to_eur numeric(12, 6) NOT NULL,
    UNIQUE (currency_id, rate_date)
);
COMMENT ON TABLE exchange_rates IS 'Month-end rates: 1 unit of the currency is worth rate_to_eur euros';

CREATE TABLE tax_rates (
    id int PRIMARY KEY,
    country_id int NOT NULL REFERENCES countries,
    code text NOT NULL,
    name text NOT NULL,
    rate numeric(5, 2) NOT NULL,
    valid_from date NOT NULL
);
COMMENT ON COLUMN tax_rates.rate IS 'VAT / sales tax rate in percent, e.g. 20.00';

CREATE TABLE public_holidays (
    id int PRIMARY KEY,
    country_id int NOT NULL REFERENCES countries,
    holiday_date date NOT NULL,
    name text NOT NULL
);

-- ===================================================================== facilities
CREATE TABLE sites (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    city text NOT NULL,
    country_id int NOT NULL REFERENCES countries,
    opened_on date NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'closed'))
);
COMMENT ON TABLE sites IS 'Company premises (offices, plants); warehouses and rooms belong to a site';

CREATE TABLE rooms (
    id int PRIMARY KEY,
    site_id int NOT NULL REFERENCES sites,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    room_type text NOT NULL CHECK (room_type IN ('meeting', 'conference', 'training', 'office')),
    capacity int NOT NULL
);
COMMENT ON COLUMN rooms.capacity IS 'Number of seats';

-- ===================================================================== finance (part 1) and HR
CREATE TABLE cost_centres (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'inactive'))
);
COMMENT ON TABLE cost_centres IS 'Accounting cost centres that expenses and budgets are booked against';

CREATE TABLE departments (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    parent_id int REFERENCES departments,
    site_id int NOT NULL REFERENCES sites,
    cost_centre_id int NOT NULL REFERENCES cost_centres,
    head_employee_id int,
    created_at timestamp NOT NULL
);
COMMENT ON TABLE departments IS 'Organisational units of the company';
COMMENT ON COLUMN departments.head_employee_id IS 'Employee (employees.id) who heads the department';

CREATE TABLE positions (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    title text NOT NULL,
    grade int NOT NULL,
    department_id int NOT NULL REFERENCES departments,
    min_salary numeric(10, 2) NOT NULL,
    max_salary numeric(10, 2) NOT NULL
);
COMMENT ON TABLE positions IS 'Job positions (job titles) with their annual salary band';

CREATE TABLE employees (
    id int PRIMARY KEY,
    employee_number text NOT NULL UNIQUE,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text NOT NULL,
    department_id int NOT NULL REFERENCES departments,
    position_id int NOT NULL REFERENCES positions,
    manager_id int REFERENCES employees,
    site_id int NOT NULL REFERENCES sites,
    hired_on date NOT NULL,
    terminated_on date,
    status text NOT NULL CHECK (status IN ('active', 'on_leave', 'terminated'))
);
COMMENT ON COLUMN employees.site_id IS 'Site where the employee is based';
COMMENT ON COLUMN employees.terminated_on IS 'Last working day; NULL while employed';

ALTER TABLE departments ADD FOREIGN KEY (head_employee_id) REFERENCES employees;

CREATE TABLE salary_history (
    id int PRIMARY KEY,
    employee_id int NOT NULL REFERENCES employees,
    effective_from date NOT NULL,
    annual_salary numeric(10, 2) NOT NULL,
    currency_id int NOT NULL REFERENCES currencies,
    reason text NOT NULL CHECK (reason IN ('hire', 'annual_review', 'promotion', 'adjustment'))
);
COMMENT ON TABLE salary_history IS 'Every salary change; the current salary is the row with the latest effective_from';

CREATE TABLE leave_types (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    paid boolean NOT NULL
);

CREATE TABLE leave_requests (
    id int PRIMARY KEY,
    employee_id int NOT NULL REFERENCES employees,
    leave_type_id int NOT NULL REFERENCES leave_types,
    start_date date NOT NULL,
    end_date date NOT NULL,
    days int NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    approved_by int REFERENCES employees,
    created_at timestamp NOT NULL
);
COMMENT ON COLUMN leave_requests.days IS 'Number of days of absence requested';

CREATE TABLE training_courses (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    provider text NOT NULL,
    duration_hours int NOT NULL
);

CREATE TABLE training_enrolments (
    id int PRIMARY KEY,
    course_id int NOT NULL REFERENCES training_courses,
    employee_id int NOT NULL REFERENCES employees,
    enrolled_on date NOT NULL,
    completed_on date,
    score int,
    UNIQUE (course_id, employee_id)
);
COMMENT ON COLUMN training_enrolments.completed_on IS 'NULL while the course is not completed';

CREATE TABLE room_bookings (
    id int PRIMARY KEY,
    room_id int NOT NULL REFERENCES rooms,
    booked_by int NOT NULL REFERENCES employees,
    starts_at timestamp NOT NULL,
    ends_at timestamp NOT NULL,
    purpose text NOT NULL,
    status text NOT NULL CHECK (status IN ('confirmed', 'cancelled'))
);

-- ===================================================================== finance (part 2)
CREATE TABLE accounts (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    account_type text NOT NULL CHECK (account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
    is_active boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE accounts IS 'General ledger chart of accounts';

CREATE TABLE fiscal_periods (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    starts_on date NOT NULL,
    ends_on date NOT NULL,
    closed boolean NOT NULL
);
COMMENT ON TABLE fiscal_periods IS 'Accounting months; the fiscal year is the calendar year';

CREATE TABLE journal_entries (
    id int PRIMARY KEY,
    entry_number text NOT NULL UNIQUE,
    entry_date date NOT NULL,
    period_id int NOT NULL REFERENCES fiscal_periods,
    description text NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'posted', 'reversed')),
    created_by int NOT NULL REFERENCES employees
);

CREATE TABLE journal_lines (
    id int PRIMARY KEY,
    journal_entry_id int NOT NULL REFERENCES journal_entries,
    account_id int NOT NULL REFERENCES accounts,
    cost_centre_id int REFERENCES cost_centres,
    debit numeric(12, 2) NOT NULL DEFAULT 0,
    credit numeric(12, 2) NOT NULL DEFAULT 0
);
COMMENT ON TABLE journal_lines IS 'Debit and credit lines of journal entries, in EUR';

CREATE TABLE budgets (
    id int PRIMARY KEY,
    cost_centre_id int NOT NULL REFERENCES cost_centres,
    account_id int NOT NULL REFERENCES accounts,
    fiscal_year int NOT NULL,
    amount numeric(12, 2) NOT NULL,
    UNIQUE (cost_centre_id, account_id, fiscal_year)
);
COMMENT ON TABLE budgets IS 'Yearly expense budget per cost centre and account, in EUR';

CREATE TABLE expense_claims (
    id int PRIMARY KEY,
    employee_id int NOT NULL REFERENCES employees,
    cost_centre_id int NOT NULL REFERENCES cost_centres,
    submitted_on date NOT NULL,
    category text NOT NULL CHECK (category IN ('travel', 'meals', 'lodging', 'equipment', 'other')),
    amount numeric(10, 2) NOT NULL,
    currency_id int NOT NULL REFERENCES currencies,
    status text NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'reimbursed'))
);
COMMENT ON TABLE expense_claims IS 'Out-of-pocket expenses employees ask to be reimbursed';

-- ===================================================================== inventory and purchasing
CREATE TABLE product_categories (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    parent_id int REFERENCES product_categories
);

CREATE TABLE suppliers (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    country_id int NOT NULL REFERENCES countries,
    currency_id int NOT NULL REFERENCES currencies,
    rating int CHECK (rating BETWEEN 1 AND 5),
    status text NOT NULL CHECK (status IN ('active', 'blocked', 'inactive')),
    created_at timestamp NOT NULL
);
COMMENT ON TABLE suppliers IS 'Vendors the company buys goods and services from';

CREATE TABLE supplier_contacts (
    id int PRIMARY KEY,
    supplier_id int NOT NULL REFERENCES suppliers,
    full_name text NOT NULL,
    email text,
    phone text,
    job_title text
);

CREATE TABLE products (
    id int PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    category_id int NOT NULL REFERENCES product_categories,
    default_supplier_id int REFERENCES suppliers,
    unit_price numeric(10, 2) NOT NULL,
    unit_cost numeric(10, 2) NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'discontinued', 'draft')),
    created_at timestamp NOT NULL
);
COMMENT ON COLUMN products.unit_price IS 'List selling price in EUR';
COMMENT ON COLUMN products.unit_cost IS 'Standard purchase cost in EUR';

CREATE TABLE warehouses (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    site_id int NOT NULL REFERENCES sites,
    status text NOT NULL CHECK (status IN ('active', 'closed'))
);

CREATE TABLE bins (
    id int PRIMARY KEY,
    warehouse_id int NOT NULL REFERENCES warehouses,
    code text NOT NULL,
    zone text NOT NULL,
    max_units int NOT NULL,
    UNIQUE (warehouse_id, code)
);
COMMENT ON TABLE bins IS 'Storage locations (shelves) inside a warehouse';

CREATE TABLE stock_levels (
    product_id int NOT NULL REFERENCES products,
    bin_id int NOT NULL REFERENCES bins,
    quantity_on_hand int NOT NULL,
    last_counted_on date NOT NULL,
    PRIMARY KEY (product_id, bin_id)
);
COMMENT ON TABLE stock_levels IS 'Current stock: units on hand of each product in each bin';

CREATE TABLE stock_movements (
    id int PRIMARY KEY,
    product_id int NOT NULL REFERENCES products,
    bin_id int NOT NULL REFERENCES bins,
    movement_type text NOT NULL CHECK (movement_type IN ('receipt', 'issue', 'transfer', 'adjustment', 'return')),
    quantity int NOT NULL,
    moved_at timestamp NOT NULL,
    reference text
);
COMMENT ON TABLE stock_movements IS 'History of goods moving in or out of bins';
COMMENT ON COLUMN stock_movements.quantity IS 'Positive for goods in, negative for goods out';

CREATE TABLE purchase_orders (
    id int PRIMARY KEY,
    po_number text NOT NULL UNIQUE,
    supplier_id int NOT NULL REFERENCES suppliers,
    warehouse_id int NOT NULL REFERENCES warehouses,
    ordered_on date NOT NULL,
    expected_on date NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'sent', 'partially_received', 'received', 'cancelled')),
    currency_id int NOT NULL REFERENCES currencies,
    created_by int NOT NULL REFERENCES employees
);
COMMENT ON TABLE purchase_orders IS 'Orders the company places with its suppliers';

CREATE TABLE purchase_order_lines (
    id int PRIMARY KEY,
    purchase_order_id int NOT NULL REFERENCES purchase_orders,
    product_id int NOT NULL REFERENCES products,
    quantity int NOT NULL,
    unit_cost numeric(10, 2) NOT NULL
);

CREATE TABLE goods_receipts (
    id int PRIMARY KEY,
    receipt_number text NOT NULL UNIQUE,
    purchase_order_id int NOT NULL REFERENCES purchase_orders,
    received_on date NOT NULL,
    received_by int NOT NULL REFERENCES employees,
    status text NOT NULL CHECK (status IN ('draft', 'posted'))
);
COMMENT ON TABLE goods_receipts IS 'Deliveries received from suppliers against purchase orders';

CREATE TABLE goods_receipt_lines (
    id int PRIMARY KEY,
    receipt_id int NOT NULL REFERENCES goods_receipts,
    purchase_order_line_id int NOT NULL REFERENCES purchase_order_lines,
    quantity_received int NOT NULL,
    quantity_rejected int NOT NULL DEFAULT 0
);
COMMENT ON COLUMN goods_receipt_lines.quantity_rejected IS 'Units refused at receipt (damaged or wrong)';

-- ===================================================================== sales
CREATE TABLE customers (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    country_id int NOT NULL REFERENCES countries,
    currency_id int NOT NULL REFERENCES currencies,
    segment text NOT NULL CHECK (segment IN ('enterprise', 'smb', 'public')),
    credit_limit numeric(12, 2) NOT NULL,
    account_manager_id int REFERENCES employees,
    status text NOT NULL CHECK (status IN ('active', 'inactive', 'prospect')),
    created_at timestamp NOT NULL
);
COMMENT ON TABLE customers IS 'Companies that buy from us (client accounts)';
COMMENT ON COLUMN customers.account_manager_id IS 'Sales employee responsible for the customer';

CREATE TABLE customer_contacts (
    id int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text,
    phone text,
    job_title text,
    is_primary boolean NOT NULL
);
COMMENT ON TABLE customer_contacts IS 'People we deal with at customer companies';

CREATE TABLE quotes (
    id int PRIMARY KEY,
    quote_number text NOT NULL UNIQUE,
    customer_id int NOT NULL REFERENCES customers,
    sales_rep_id int NOT NULL REFERENCES employees,
    issued_on date NOT NULL,
    valid_until date NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'sent', 'accepted', 'rejected', 'expired')),
    total_amount numeric(12, 2) NOT NULL DEFAULT 0
);
COMMENT ON TABLE quotes IS 'Price quotations (offers) sent to customers before they order';

CREATE TABLE quote_lines (
    id int PRIMARY KEY,
    quote_id int NOT NULL REFERENCES quotes,
    product_id int NOT NULL REFERENCES products,
    quantity int NOT NULL,
    unit_price numeric(10, 2) NOT NULL
);

CREATE TABLE sales_orders (
    id int PRIMARY KEY,
    order_number text NOT NULL UNIQUE,
    customer_id int NOT NULL REFERENCES customers,
    quote_id int REFERENCES quotes,
    sales_rep_id int NOT NULL REFERENCES employees,
    warehouse_id int NOT NULL REFERENCES warehouses,
    ordered_on date NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    currency_id int NOT NULL REFERENCES currencies
);
COMMENT ON TABLE sales_orders IS 'Customer orders; warehouse_id is the warehouse that fulfils the order';

CREATE TABLE sales_order_lines (
    id int PRIMARY KEY,
    sales_order_id int NOT NULL REFERENCES sales_orders,
    product_id int NOT NULL REFERENCES products,
    quantity int NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    discount_pct numeric(5, 2) NOT NULL DEFAULT 0
);
COMMENT ON COLUMN sales_order_lines.discount_pct IS 'Line discount in percent';

CREATE TABLE shipments (
    id int PRIMARY KEY,
    sales_order_id int NOT NULL REFERENCES sales_orders,
    warehouse_id int NOT NULL REFERENCES warehouses,
    carrier text NOT NULL,
    tracking_code text NOT NULL,
    shipped_on date NOT NULL,
    delivered_on date,
    status text NOT NULL CHECK (status IN ('in_transit', 'delivered', 'returned'))
);

CREATE TABLE invoices (
    id int PRIMARY KEY,
    invoice_number text NOT NULL UNIQUE,
    sales_order_id int NOT NULL REFERENCES sales_orders,
    customer_id int NOT NULL REFERENCES customers,
    issued_on date NOT NULL,
    due_on date NOT NULL,
    total_amount numeric(12, 2) NOT NULL,
    currency_id int NOT NULL REFERENCES currencies,
    status text NOT NULL CHECK (status IN ('issued', 'paid', 'partially_paid', 'overdue', 'void'))
);
COMMENT ON COLUMN invoices.total_amount IS 'Invoice total excluding tax';

CREATE TABLE payments (
    id int PRIMARY KEY,
    invoice_id int NOT NULL REFERENCES invoices,
    paid_on date NOT NULL,
    amount numeric(12, 2) NOT NULL,
    method text NOT NULL CHECK (method IN ('bank_transfer', 'card', 'cheque', 'direct_debit')),
    reference text
);
COMMENT ON TABLE payments IS 'Money received from customers against invoices';

CREATE TABLE credit_notes (
    id int PRIMARY KEY,
    credit_note_number text NOT NULL UNIQUE,
    invoice_id int NOT NULL REFERENCES invoices,
    customer_id int NOT NULL REFERENCES customers,
    issued_on date NOT NULL,
    amount numeric(12, 2) NOT NULL,
    reason text NOT NULL,
    status text NOT NULL CHECK (status IN ('draft', 'issued', 'applied'))
);
COMMENT ON TABLE credit_notes IS 'Amounts credited back to customers against an invoice (refunds, corrections)';

-- ===================================================================== projects
CREATE TABLE projects (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    customer_id int REFERENCES customers,
    manager_id int NOT NULL REFERENCES employees,
    department_id int NOT NULL REFERENCES departments,
    start_date date NOT NULL,
    end_date date,
    budget_amount numeric(12, 2) NOT NULL,
    status text NOT NULL CHECK (status IN ('planned', 'active', 'on_hold', 'completed', 'cancelled'))
);
COMMENT ON COLUMN projects.customer_id IS 'Client the project is delivered for; NULL for internal projects';

CREATE TABLE project_tasks (
    id int PRIMARY KEY,
    project_id int NOT NULL REFERENCES projects,
    name text NOT NULL,
    assignee_id int REFERENCES employees,
    status text NOT NULL CHECK (status IN ('todo', 'in_progress', 'done', 'blocked')),
    priority text NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
    estimated_hours numeric(6, 1) NOT NULL,
    due_date date
);

CREATE TABLE milestones (
    id int PRIMARY KEY,
    project_id int NOT NULL REFERENCES projects,
    name text NOT NULL,
    due_date date NOT NULL,
    completed_on date,
    billing_amount numeric(12, 2) NOT NULL DEFAULT 0
);
COMMENT ON COLUMN milestones.completed_on IS 'NULL while the milestone is not reached';

CREATE TABLE timesheets (
    id int PRIMARY KEY,
    employee_id int NOT NULL REFERENCES employees,
    task_id int NOT NULL REFERENCES project_tasks,
    work_date date NOT NULL,
    hours numeric(4, 1) NOT NULL,
    billable boolean NOT NULL,
    approved boolean NOT NULL
);
COMMENT ON TABLE timesheets IS 'Hours employees log against project tasks';

-- ===================================================================== support
CREATE TABLE slas (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    response_hours int NOT NULL,
    resolution_hours int NOT NULL
);
COMMENT ON TABLE slas IS 'Service level agreements: target first-response and resolution times';

CREATE TABLE tickets (
    id int PRIMARY KEY,
    ticket_number text NOT NULL UNIQUE,
    customer_id int NOT NULL REFERENCES customers,
    contact_id int REFERENCES customer_contacts,
    product_id int REFERENCES products,
    sla_id int NOT NULL REFERENCES slas,
    assigned_to int REFERENCES employees,
    subject text NOT NULL,
    priority text NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status text NOT NULL CHECK (status IN ('open', 'in_progress', 'waiting', 'resolved', 'closed')),
    opened_at timestamp NOT NULL,
    resolved_at timestamp
);
COMMENT ON TABLE tickets IS 'Customer support tickets (cases)';

CREATE TABLE ticket_comments (
    id int PRIMARY KEY,
    ticket_id int NOT NULL REFERENCES tickets,
    author_id int REFERENCES employees,
    body text NOT NULL,
    is_internal boolean NOT NULL,
    created_at timestamp NOT NULL
);
COMMENT ON COLUMN ticket_comments.author_id IS 'Employee who wrote the comment; NULL when written by the customer';

-- ===================================================================== fleet
CREATE TABLE vehicles (
    id int PRIMARY KEY,
    registration text NOT NULL UNIQUE,
    make text NOT NULL,
    model text NOT NULL,
    model_year int NOT NULL,
    site_id int NOT NULL REFERENCES sites,
    fuel_type text NOT NULL CHECK (fuel_type IN ('diesel', 'petrol', 'hybrid', 'electric')),
    status text NOT NULL CHECK (status IN ('active', 'in_service', 'retired')),
    acquired_on date NOT NULL
);
COMMENT ON TABLE vehicles IS 'Company cars and vans';

CREATE TABLE trips (
    id int PRIMARY KEY,
    vehicle_id int NOT NULL REFERENCES vehicles,
    driver_id int NOT NULL REFERENCES employees,
    started_at timestamp NOT NULL,
    ended_at timestamp NOT NULL,
    start_km int NOT NULL,
    end_km int NOT NULL,
    purpose text NOT NULL
);
COMMENT ON COLUMN trips.start_km IS 'Odometer reading at departure';

CREATE TABLE fuel_logs (
    id int PRIMARY KEY,
    vehicle_id int NOT NULL REFERENCES vehicles,
    filled_on date NOT NULL,
    litres numeric(6, 2) NOT NULL,
    cost numeric(8, 2) NOT NULL,
    odometer_km int NOT NULL,
    station text NOT NULL
);
COMMENT ON COLUMN fuel_logs.cost IS 'Amount paid at the pump, EUR';

CREATE TABLE vehicle_maintenance (
    id int PRIMARY KEY,
    vehicle_id int NOT NULL REFERENCES vehicles,
    serviced_on date NOT NULL,
    kind text NOT NULL CHECK (kind IN ('service', 'tyres', 'repair', 'inspection')),
    cost numeric(8, 2) NOT NULL,
    vendor text NOT NULL
);

-- ===================================================================== marketing
CREATE TABLE channels (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL
);
COMMENT ON TABLE channels IS 'Marketing channels (media) campaigns run on';

CREATE TABLE campaigns (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    channel_id int NOT NULL REFERENCES channels,
    owner_id int NOT NULL REFERENCES employees,
    start_date date NOT NULL,
    end_date date NOT NULL,
    budget numeric(10, 2) NOT NULL,
    status text NOT NULL CHECK (status IN ('planned', 'running', 'finished', 'cancelled'))
);

CREATE TABLE leads (
    id int PRIMARY KEY,
    campaign_id int REFERENCES campaigns,
    first_name text NOT NULL,
    last_name text NOT NULL,
    company_name text NOT NULL,
    email text,
    country_id int REFERENCES countries,
    score int NOT NULL,
    status text NOT NULL CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
    converted_customer_id int REFERENCES customers,
    created_at timestamp NOT NULL
);
COMMENT ON TABLE leads IS 'Prospective buyers collected by marketing; converted_customer_id is set once a lead became a customer';
COMMENT ON COLUMN leads.score IS 'Lead score 0-100';

-- ===================================================================== assets
CREATE TABLE asset_categories (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    depreciation_years int NOT NULL
);

CREATE TABLE assets (
    id int PRIMARY KEY,
    asset_tag text NOT NULL UNIQUE,
    name text NOT NULL,
    category_id int NOT NULL REFERENCES asset_categories,
    site_id int NOT NULL REFERENCES sites,
    assigned_to int REFERENCES employees,
    supplier_id int REFERENCES suppliers,
    purchased_on date NOT NULL,
    purchase_cost numeric(10, 2) NOT NULL,
    status text NOT NULL CHECK (status IN ('in_use', 'in_stock', 'repair', 'disposed'))
);
COMMENT ON TABLE assets IS 'Fixed assets the company owns (IT equipment, furniture, machines), tagged and tracked';

CREATE TABLE asset_maintenance (
    id int PRIMARY KEY,
    asset_id int NOT NULL REFERENCES assets,
    performed_on date NOT NULL,
    description text NOT NULL,
    cost numeric(8, 2) NOT NULL
);

-- ===================================================================== data: reference
INSERT INTO currencies VALUES
  (1, 'EUR', 'Euro', '€'), (2, 'USD', 'US Dollar', '$'), (3, 'GBP', 'Pound Sterling', '£'),
  (4, 'JPY', 'Japanese Yen', '¥'), (5, 'CNY', 'Chinese Yuan', '¥'), (6, 'INR', 'Indian Rupee', '₹'),
  (7, 'BRL', 'Brazilian Real', 'R$'), (8, 'CAD', 'Canadian Dollar', 'C$'), (9, 'AUD', 'Australian Dollar', 'A$');

INSERT INTO countries VALUES
  (1, 'FR', 'France', 'Europe', 1), (2, 'DE', 'Germany', 'Europe', 1), (3, 'ES', 'Spain', 'Europe', 1),
  (4, 'IT', 'Italy', 'Europe', 1), (5, 'GB', 'United Kingdom', 'Europe', 3),
  (6, 'US', 'United States', 'North America', 2), (7, 'CA', 'Canada', 'North America', 8),
  (8, 'JP', 'Japan', 'Asia', 4), (9, 'CN', 'China', 'Asia', 5), (10, 'IN', 'India', 'Asia', 6),
  (11, 'BR', 'Brazil', 'South America', 7), (12, 'AU', 'Australia', 'Oceania', 9),
  (13, 'NL', 'Netherlands', 'Europe', 1);

-- month-end rates for 2024 and 2025, every currency except the euro
INSERT INTO exchange_rates
SELECT (c - 2) * 24 + m, c,
       (date '2024-01-01' + m * interval '1 month' - interval '1 day')::date,
       round(base * (1 + ((m * 7 + c) % 9 - 4) * 0.006), 6)
  FROM (VALUES (2, 0.92), (3, 1.17), (4, 0.0062), (5, 0.128), (6, 0.0111), (7, 0.172), (8, 0.68), (9, 0.61)) b(c, base),
       generate_series(1, 24) m;

INSERT INTO tax_rates VALUES
  (1, 1, 'FR-STD', 'TVA normale', 20.00, '2014-01-01'), (2, 1, 'FR-RED', 'TVA réduite', 5.50, '2014-01-01'),
  (3, 2, 'DE-STD', 'Mehrwertsteuer', 19.00, '2007-01-01'), (4, 2, 'DE-RED', 'Ermäßigter Satz', 7.00, '2007-01-01'),
  (5, 3, 'ES-STD', 'IVA general', 21.00, '2012-09-01'), (6, 3, 'ES-RED', 'IVA reducido', 10.00, '2012-09-01'),
  (7, 4, 'IT-STD', 'IVA ordinaria', 22.00, '2013-10-01'), (8, 4, 'IT-RED', 'IVA ridotta', 10.00, '2013-10-01'),
  (9, 5, 'GB-STD', 'VAT standard rate', 20.00, '2011-01-04'), (10, 5, 'GB-RED', 'VAT reduced rate', 5.00, '2011-01-04'),
  (11, 13, 'NL-STD', 'BTW hoog tarief', 21.00, '2012-10-01'), (12, 13, 'NL-RED', 'BTW laag tarief', 9.00, '2019-01-01'),
  (13, 7, 'CA-GST', 'Goods and Services Tax', 5.00, '2008-01-01'), (14, 8, 'JP-CT', 'Consumption tax', 10.00, '2019-10-01'),
  (15, 12, 'AU-GST', 'Goods and Services Tax', 10.00, '2000-07-01'), (16, 10, 'IN-GST', 'GST standard slab', 18.00, '2017-07-01');

INSERT INTO public_holidays VALUES
  (1, 1, '2025-01-01', 'Jour de l''an'), (2, 1, '2025-04-21', 'Lundi de Pâques'), (3, 1, '2025-05-01', 'Fête du Travail'),
  (4, 1, '2025-05-08', 'Victoire 1945'), (5, 1, '2025-05-29', 'Ascension'), (6, 1, '2025-06-09', 'Lundi de Pentecôte'),
  (7, 1, '2025-07-14', 'Fête nationale'), (8, 1, '2025-08-15', 'Assomption'), (9, 1, '2025-11-01', 'Toussaint'),
  (10, 1, '2025-11-11', 'Armistice'), (11, 1, '2025-12-25', 'Noël'),
  (12, 2, '2025-01-01', 'Neujahr'), (13, 2, '2025-04-18', 'Karfreitag'), (14, 2, '2025-04-21', 'Ostermontag'),
  (15, 2, '2025-05-01', 'Tag der Arbeit'), (16, 2, '2025-05-29', 'Christi Himmelfahrt'), (17, 2, '2025-06-09', 'Pfingstmontag'),
  (18, 2, '2025-10-03', 'Tag der Deutschen Einheit'), (19, 2, '2025-12-25', 'Erster Weihnachtstag'), (20, 2, '2025-12-26', 'Zweiter Weihnachtstag'),
  (21, 3, '2025-01-01', 'Año Nuevo'), (22, 3, '2025-01-06', 'Epifanía del Señor'), (23, 3, '2025-04-18', 'Viernes Santo'),
  (24, 3, '2025-05-01', 'Fiesta del Trabajo'), (25, 3, '2025-08-15', 'Asunción de la Virgen'), (26, 3, '2025-10-12', 'Fiesta Nacional de España'),
  (27, 3, '2025-11-01', 'Todos los Santos'), (28, 3, '2025-12-06', 'Día de la Constitución'), (29, 3, '2025-12-08', 'Inmaculada Concepción'),
  (30, 3, '2025-12-25', 'Navidad'),
  (31, 5, '2025-01-01', 'New Year''s Day'), (32, 5, '2025-04-18', 'Good Friday'), (33, 5, '2025-04-21', 'Easter Monday'),
  (34, 5, '2025-05-05', 'Early May bank holiday'), (35, 5, '2025-05-26', 'Spring bank holiday'), (36, 5, '2025-08-25', 'Summer bank holiday'),
  (37, 5, '2025-12-25', 'Christmas Day'), (38, 5, '2025-12-26', 'Boxing Day'),
  (39, 6, '2025-01-01', 'New Year''s Day'), (40, 6, '2025-01-20', 'Martin Luther King Jr. Day'), (41, 6, '2025-02-17', 'Presidents'' Day'),
  (42, 6, '2025-05-26', 'Memorial Day'), (43, 6, '2025-06-19', 'Juneteenth'), (44, 6, '2025-07-04', 'Independence Day'),
  (45, 6, '2025-09-01', 'Labor Day'), (46, 6, '2025-10-13', 'Columbus Day'), (47, 6, '2025-11-11', 'Veterans Day'),
  (48, 6, '2025-11-27', 'Thanksgiving Day'), (49, 6, '2025-12-25', 'Christmas Day'),
  (50, 1, '2024-01-01', 'Jour de l''an'), (51, 1, '2024-04-01', 'Lundi de Pâques'), (52, 1, '2024-05-01', 'Fête du Travail'),
  (53, 1, '2024-05-08', 'Victoire 1945'), (54, 1, '2024-05-09', 'Ascension'), (55, 1, '2024-05-20', 'Lundi de Pentecôte'),
  (56, 1, '2024-07-14', 'Fête nationale'), (57, 1, '2024-08-15', 'Assomption'), (58, 1, '2024-11-01', 'Toussaint'),
  (59, 1, '2024-11-11', 'Armistice'), (60, 1, '2024-12-25', 'Noël');

-- ===================================================================== data: facilities
INSERT INTO sites VALUES
  (1, 'PAR-HQ', 'Paris Headquarters', 'Paris', 1, '2008-03-01', 'active'),
  (2, 'LYO', 'Lyon Campus', 'Lyon', 1, '2011-09-15', 'active'),
  (3, 'BER', 'Berlin Office', 'Berlin', 2, '2013-05-02', 'active'),
  (4, 'MAD', 'Madrid Office', 'Madrid', 3, '2015-01-12', 'active'),
  (5, 'MAN', 'Manchester Office', 'Manchester', 5, '2016-06-01', 'active'),
  (6, 'BOS', 'Boston Office', 'Boston', 6, '2018-02-19', 'active'),
  (7, 'TOR', 'Toronto Office', 'Toronto', 7, '2019-10-07', 'active'),
  (8, 'OSA', 'Osaka Office', 'Osaka', 8, '2021-04-01', 'active');

INSERT INTO rooms
SELECT r.id, s.site,
       (SELECT code FROM sites WHERE id = s.site) || '-R' || lpad(r.id::text, 2, '0'),
       (ARRAY['Everest', 'Kilimanjaro', 'Mont Blanc', 'Matterhorn', 'Denali', 'Aconcagua', 'Fuji', 'Olympus', 'Etna', 'Vesuvius',
              'Rhône', 'Saône', 'Loire', 'Garonne', 'Seine', 'Danube',
              'Spree', 'Elbe', 'Havel', 'Oder', 'Rhine', 'Main', 'Weser',
              'Tajo', 'Ebro', 'Duero', 'Guadalquivir',
              'Mersey', 'Irwell', 'Thames',
              'Charles', 'Mystic', 'Neponset', 'Merrimack', 'Concord',
              'Don', 'Humber', 'Rouge',
              'Yodo', 'Kamo'])[r.id],
       (ARRAY['meeting', 'meeting', 'conference', 'office', 'meeting', 'training', 'office'])[r.id % 7 + 1],
       (ARRAY[6, 8, 12, 4, 10, 20, 2, 14, 6, 40])[r.id % 10 + 1]
  FROM generate_series(1, 40) r(id),
       LATERAL (SELECT CASE WHEN r.id <= 10 THEN 1 WHEN r.id <= 16 THEN 2 WHEN r.id <= 23 THEN 3 WHEN r.id <= 27 THEN 4
                            WHEN r.id <= 30 THEN 5 WHEN r.id <= 35 THEN 6 WHEN r.id <= 38 THEN 7 ELSE 8 END AS site) s;

-- ===================================================================== data: HR
INSERT INTO cost_centres VALUES
  (1, 'CC100', 'Executive', 'active'), (2, 'CC200', 'Finance & Accounting', 'active'),
  (3, 'CC300', 'People & Culture', 'active'), (4, 'CC400', 'Sales', 'active'),
  (5, 'CC500', 'Marketing', 'active'), (6, 'CC600', 'IT Operations', 'active'),
  (7, 'CC700', 'Logistics', 'active'), (8, 'CC800', 'Customer Care', 'active'),
  (9, 'CC900', 'Research & Development', 'active'), (10, 'CC950', 'Facilities', 'active'),
  (11, 'CC990', 'Legacy Retail', 'inactive');

INSERT INTO departments (id, code, name, parent_id, site_id, cost_centre_id, created_at) VALUES
  (1, 'EXEC', 'Executive Office', NULL, 1, 1, '2008-03-01 09:00'),
  (2, 'FIN', 'Finance', 1, 1, 2, '2008-03-01 09:00'),
  (3, 'HR', 'Human Resources', 1, 1, 3, '2008-03-01 09:00'),
  (4, 'SAL-EU', 'Sales EMEA', 1, 3, 4, '2013-05-02 09:00'),
  (5, 'SAL-AM', 'Sales Americas', 1, 6, 4, '2018-02-19 09:00'),
  (6, 'MKT', 'Marketing', 1, 1, 5, '2010-01-04 09:00'),
  (7, 'IT', 'Information Technology', 1, 2, 6, '2011-09-15 09:00'),
  (8, 'LOG', 'Logistics', 1, 2, 7, '2011-09-15 09:00'),
  (9, 'SUP', 'Customer Support', 1, 4, 8, '2015-01-12 09:00'),
  (10, 'ENG', 'Engineering', 1, 3, 9, '2013-05-02 09:00'),
  (11, 'PROC', 'Procurement', 2, 2, 7, '2012-04-01 09:00'),
  (12, 'FAC', 'Facilities Management', 1, 1, 10, '2009-06-01 09:00');

INSERT INTO positions VALUES
  (1, 'EXEC-1', 'Chief Executive Officer', 9, 1, 180000, 260000), (2, 'EXEC-2', 'Executive Assistant', 3, 1, 38000, 52000),
  (3, 'FIN-1', 'Finance Manager', 7, 2, 85000, 120000), (4, 'FIN-2', 'Accountant', 4, 2, 42000, 62000),
  (5, 'HR-1', 'HR Manager', 7, 3, 80000, 110000), (6, 'HR-2', 'HR Specialist', 4, 3, 40000, 58000),
  (7, 'SALEU-1', 'Sales Director EMEA', 8, 4, 95000, 140000), (8, 'SALEU-2', 'Account Executive', 5, 4, 48000, 75000),
  (9, 'SALAM-1', 'Sales Director Americas', 8, 5, 100000, 150000), (10, 'SALAM-2', 'Sales Representative', 5, 5, 50000, 80000),
  (11, 'MKT-1', 'Marketing Manager', 7, 6, 80000, 115000), (12, 'MKT-2', 'Marketing Specialist', 4, 6, 40000, 60000),
  (13, 'IT-1', 'IT Manager', 7, 7, 85000, 120000), (14, 'IT-2', 'System Administrator', 5, 7, 48000, 70000),
  (15, 'LOG-1', 'Logistics Manager', 6, 8, 65000, 90000), (16, 'LOG-2', 'Warehouse Operator', 2, 8, 28000, 38000),
  (17, 'SUP-1', 'Support Manager', 6, 9, 65000, 90000), (18, 'SUP-2', 'Support Agent', 3, 9, 32000, 45000),
  (19, 'ENG-1', 'Engineering Manager', 8, 10, 95000, 140000), (20, 'ENG-2', 'Software Engineer', 5, 10, 55000, 90000),
  (21, 'PROC-1', 'Procurement Manager', 6, 11, 70000, 95000), (22, 'PROC-2', 'Buyer', 4, 11, 40000, 56000),
  (23, 'FAC-1', 'Facilities Manager', 6, 12, 60000, 85000), (24, 'FAC-2', 'Facilities Technician', 3, 12, 32000, 44000);

CREATE TEMP TABLE tmp_names AS
SELECT ARRAY['Alice', 'Bruno', 'Camille', 'David', 'Elena', 'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas',
             'Karin', 'Luca', 'Maya', 'Nils', 'Olga', 'Pedro', 'Quentin', 'Rosa', 'Samir', 'Tara',
             'Umar', 'Vera', 'Walter', 'Xenia', 'Yann', 'Zoe', 'Anton', 'Beatriz', 'Carlos', 'Dana'] AS fn,
       ARRAY['Martin', 'Schmidt', 'Garcia', 'Rossi', 'Smith', 'Dubois', 'Muller', 'Lopez', 'Bianchi', 'Brown',
             'Moreau', 'Fischer', 'Fernandez', 'Ricci', 'Taylor', 'Laurent', 'Weber', 'Sanchez', 'Romano', 'Wilson',
             'Girard', 'Wagner', 'Navarro', 'Conti'] AS ln;

-- 120 employees; department slots give Engineering 24, Sales EMEA and Customer Support 18, IT 12, others 6
INSERT INTO employees
SELECT g, 'E' || lpad(g::text, 4, '0'), n.fn[(g - 1) % 30 + 1], n.ln[(g - 1) % 24 + 1],
       lower(n.fn[(g - 1) % 30 + 1] || '.' || n.ln[(g - 1) % 24 + 1]) || '@nordwerk.example',
       d.dept, d.dept * 2, NULL,
       CASE WHEN g % 9 = 0 THEN (g / 9) % 8 + 1 ELSE (SELECT site_id FROM departments WHERE id = d.dept) END,
       date '2015-01-01' + (g * 97) % 3600,
       NULL,
       CASE WHEN g % 17 = 0 THEN 'terminated' WHEN g % 23 = 0 THEN 'on_leave' ELSE 'active' END
  FROM generate_series(1, 120) g, tmp_names n,
       LATERAL (SELECT (ARRAY[1, 2, 3, 4, 4, 4, 5, 6, 7, 7, 8, 9, 9, 9, 10, 10, 10, 10, 11, 12])[((g - 1) * 7) % 20 + 1] AS dept) d;
UPDATE employees SET terminated_on = LEAST(hired_on + 300 + id % 200, date '2025-11-28') WHERE status = 'terminated';
UPDATE employees SET hired_on = '2012-03-01' WHERE id = 1;
-- the first employee of each department heads it and holds its manager position
UPDATE departments d SET head_employee_id = (SELECT min(id) FROM employees e WHERE e.department_id = d.id);
UPDATE employees e SET position_id = e.department_id * 2 - 1
  FROM departments d WHERE d.head_employee_id = e.id;
UPDATE employees e SET manager_id = CASE WHEN d.head_employee_id = e.id THEN 1 ELSE d.head_employee_id END
  FROM departments d WHERE d.id = e.department_id AND e.id <> 1;

INSERT INTO salary_history
SELECT row_number() OVER (ORDER BY e.id, k), e.id, e.hired_on + k * 365,
       round((p.min_salary + (p.max_salary - p.min_salary) * ((e.id * 37) % 60) / 100.0) * (1 + 0.04 * k) / 100) * 100,
       c.currency_id,
       CASE WHEN k = 0 THEN 'hire' WHEN (e.id + k) % 4 = 0 THEN 'promotion'
            WHEN (e.id + k) % 7 = 0 THEN 'adjustment' ELSE 'annual_review' END
  FROM employees e
  JOIN positions p ON p.id = e.position_id
  JOIN sites s ON s.id = e.site_id
  JOIN countries c ON c.id = s.country_id,
       generate_series(0, 3) k
 WHERE k <= e.id % 3 + 1 AND e.hired_on + k * 365 <= date '2025-12-31'
   AND (e.terminated_on IS NULL OR e.hired_on + k * 365 <= e.terminated_on);

INSERT INTO leave_types VALUES
  (1, 'ANNUAL', 'Annual leave', true), (2, 'SICK', 'Sick leave', true), (3, 'UNPAID', 'Unpaid leave', false),
  (4, 'PARENTAL', 'Parental leave', true), (5, 'TRAINING', 'Training leave', true);

INSERT INTO leave_requests
SELECT g, e.id, lt.t, sd, sd + (g % 7), g % 7 + 1,
       CASE WHEN g % 11 = 0 THEN 'pending' WHEN g % 13 = 0 THEN 'rejected' WHEN g % 19 = 0 THEN 'cancelled' ELSE 'approved' END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE coalesce(e.manager_id, 1) END,
       (sd - 14 + (g % 9)) + time '09:30'
  FROM generate_series(1, 260) g
  JOIN employees e ON e.id = (g * 13) % 120 + 1,
       LATERAL (SELECT date '2024-01-08' + (g * 11) % 700 AS sd) s,
       LATERAL (SELECT (ARRAY[1, 1, 1, 1, 2, 2, 1, 3, 1, 2, 5, 1, 4])[g % 13 + 1] AS t) lt;

INSERT INTO training_courses VALUES
  (1, 'TRN-GDPR', 'GDPR Basics', 'LegalLearn', 4), (2, 'TRN-SEC', 'Security Awareness', 'CyberSafe Academy', 3),
  (3, 'TRN-XL', 'Advanced Excel', 'OfficePro Training', 12), (4, 'TRN-LEAD', 'Leadership Essentials', 'Leaders Institute', 24),
  (5, 'TRN-NEG', 'Negotiation Skills', 'Leaders Institute', 16), (6, 'TRN-FIRST', 'First Aid at Work', 'Red Cross', 8),
  (7, 'TRN-FORK', 'Forklift Safety', 'SafeLift', 6), (8, 'TRN-SQL', 'SQL for Analysts', 'DataCamp Pro', 20),
  (9, 'TRN-AGILE', 'Agile Project Management', 'Scrum Academy', 14), (10, 'TRN-CS', 'Customer Service Excellence', 'ServiceFirst', 10);

INSERT INTO training_enrolments
SELECT row_number() OVER (ORDER BY c, e), c, e,
       date '2024-02-01' + (c * 31 + e * 3) % 600,
       CASE WHEN (c + e) % 4 = 0 THEN NULL ELSE date '2024-02-01' + (c * 31 + e * 3) % 600 + 7 + c END,
       CASE WHEN (c + e) % 4 = 0 THEN NULL ELSE 60 + (c * 7 + e * 3) % 41 END
  FROM generate_series(1, 10) c, generate_series(1, 120) e
 WHERE (c * 5 + e * 3) % (c + 4) = 0;

INSERT INTO room_bookings
SELECT g, CASE WHEN g % 23 = 0 THEN 3 ELSE (g * 7) % 40 + 1 END, (g * 11) % 120 + 1, st, st + ((g % 4 + 1) * interval '30 minutes'),
       (ARRAY['Team meeting', 'Client call', 'Interview', 'Training session', 'Workshop', 'One-to-one'])[g % 6 + 1],
       CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'confirmed' END
  FROM generate_series(1, 320) g,
       LATERAL (SELECT timestamp '2025-01-06 08:00' + ((g * 3) % 330) * interval '1 day' + (g % 9) * interval '1 hour' AS st) s;

-- ===================================================================== data: finance
INSERT INTO accounts VALUES
  (1, '1000', 'Cash', 'asset', true), (2, '1100', 'Bank - Operating Account', 'asset', true),
  (3, '1200', 'Accounts Receivable', 'asset', true), (4, '1300', 'Inventory', 'asset', true),
  (5, '1500', 'Fixed Assets', 'asset', true), (6, '2000', 'Accounts Payable', 'liability', true),
  (7, '2100', 'VAT Payable', 'liability', true), (8, '2200', 'Accrued Salaries', 'liability', true),
  (9, '3000', 'Share Capital', 'equity', true), (10, '3100', 'Retained Earnings', 'equity', true),
  (11, '4000', 'Product Sales', 'revenue', true), (12, '4100', 'Service Revenue', 'revenue', true),
  (13, '4200', 'Project Revenue', 'revenue', true), (14, '5000', 'Cost of Goods Sold', 'expense', true),
  (15, '6000', 'Salaries and Wages', 'expense', true), (16, '6100', 'Rent', 'expense', true),
  (17, '6200', 'Utilities', 'expense', true), (18, '6300', 'Travel Expenses', 'expense', true),
  (19, '6400', 'Marketing Expenses', 'expense', true), (20, '6500', 'IT Expenses', 'expense', true),
  (21, '6600', 'Vehicle Expenses', 'expense', true), (22, '6700', 'Training Costs', 'expense', true),
  (23, '6800', 'Depreciation', 'expense', true), (24, '6900', 'Office Supplies', 'expense', true),
  (25, '6950', 'Legacy Store Costs', 'expense', false);

INSERT INTO fiscal_periods
SELECT m, to_char(date '2024-01-01' + (m - 1) * interval '1 month', 'YYYY-MM'),
       (date '2024-01-01' + (m - 1) * interval '1 month')::date,
       (date '2024-01-01' + m * interval '1 month' - interval '1 day')::date,
       m <= 18
  FROM generate_series(1, 24) m;

INSERT INTO journal_entries
SELECT g, 'JE-' || lpad(g::text, 5, '0'), ed,
       (extract(year FROM ed)::int - 2024) * 12 + extract(month FROM ed)::int,
       CASE WHEN g % 4 = 0 THEN 'Customer invoicing batch ' || g
            ELSE (ARRAY['Payroll', 'Office rent', 'Electricity bill', 'Travel reimbursement', 'Ad spend',
                        'Software subscriptions', 'Fleet costs', 'Training invoice', 'Monthly depreciation', 'Office supplies'])[g % 10 + 1] END,
       CASE WHEN g % 17 = 0 THEN 'reversed' WHEN g % 9 = 0 THEN 'draft' ELSE 'posted' END,
       (ARRAY[2, 14, 26, 38, 50, 62])[g % 6 + 1]
  FROM generate_series(1, 220) g,
       LATERAL (SELECT date '2024-01-02' + (g * 37) % 727 AS ed) d;

-- each entry has a debit line and a matching credit line
INSERT INTO journal_lines
SELECT row_number() OVER (ORDER BY je.id, side), je.id,
       CASE WHEN je.id % 4 = 0 THEN (CASE side WHEN 1 THEN 3 ELSE 11 + je.id % 3 END)
            ELSE (CASE side WHEN 1 THEN 15 + je.id % 10 ELSE 2 END) END,
       CASE WHEN je.id % 4 <> 0 AND side = 1 THEN (je.id * 7) % 10 + 1 END,
       CASE WHEN side = 1 THEN amt ELSE 0 END,
       CASE WHEN side = 2 THEN amt ELSE 0 END
  FROM journal_entries je, generate_series(1, 2) side,
       LATERAL (SELECT ((je.id * 137) % 4000 + 150 + (je.id % 7) * 0.25)::numeric(12, 2) AS amt) a;

INSERT INTO budgets
SELECT row_number() OVER (ORDER BY cc, y, a), cc, a, y,
       ((cc * 1300 + a * 470 + (y - 2024) * 900) * (CASE a WHEN 15 THEN 20 ELSE 3 END))::numeric(12, 2)
  FROM generate_series(1, 10) cc, generate_series(2024, 2025) y, unnest(ARRAY[15, 18, 20, 24]) a;

INSERT INTO expense_claims
SELECT g, e.id, d.cost_centre_id, date '2024-01-10' + (g * 17) % 710,
       (ARRAY['travel', 'meals', 'lodging', 'travel', 'equipment', 'meals', 'other', 'travel'])[g % 8 + 1],
       ((g * 53) % 900 + 12 + (g % 4) * 0.5)::numeric(10, 2), 1,
       CASE WHEN g % 9 = 0 THEN 'rejected' WHEN g % 5 = 0 THEN 'submitted' WHEN g % 3 = 0 THEN 'approved' ELSE 'reimbursed' END
  FROM generate_series(1, 210) g
  JOIN employees e ON e.id = (g * 29) % 120 + 1
  JOIN departments d ON d.id = e.department_id;

-- ===================================================================== data: inventory and purchasing
INSERT INTO product_categories VALUES
  (1, 'HW', 'Hardware', NULL), (2, 'HW-LAP', 'Laptops', 1), (3, 'HW-MON', 'Monitors', 1),
  (4, 'HW-CAB', 'Cables & Adapters', 1), (5, 'HW-PER', 'Peripherals', 1),
  (6, 'SW', 'Software', NULL), (7, 'SW-LIC', 'Licences', 6), (8, 'SW-SUB', 'Subscriptions', 6),
  (9, 'OFF', 'Office', NULL), (10, 'OFF-FUR', 'Furniture', 9), (11, 'OFF-STA', 'Stationery', 9),
  (12, 'SRV', 'Services', NULL), (13, 'SRV-INS', 'Installation', 12), (14, 'SRV-MNT', 'Maintenance Plans', 12);

INSERT INTO suppliers VALUES
  (1, 'SUP-001', 'TechSource Europe', 2, 1, 5, 'active', '2012-02-10 10:00'),
  (2, 'SUP-002', 'Pacific Components', 9, 5, 3, 'active', '2014-07-22 10:00'),
  (3, 'SUP-003', 'Displays Direct', 8, 4, 4, 'active', '2015-03-05 10:00'),
  (4, 'SUP-004', 'CableWorld', 9, 5, 2, 'active', '2016-11-30 10:00'),
  (5, 'SUP-005', 'Peripheral Point', 6, 2, 4, 'active', '2013-08-14 10:00'),
  (6, 'SUP-006', 'SoftLicense Hub', 13, 1, 5, 'active', '2017-01-09 10:00'),
  (7, 'SUP-007', 'CloudStack Services', 6, 2, 3, 'active', '2019-05-27 10:00'),
  (8, 'SUP-008', 'Bureau Mobilier', 1, 1, 4, 'active', '2011-04-18 10:00'),
  (9, 'SUP-009', 'Papeterie Centrale', 1, 1, 3, 'active', '2010-09-01 10:00'),
  (10, 'SUP-010', 'InstallPro Services', 3, 1, 4, 'active', '2018-06-11 10:00'),
  (11, 'SUP-011', 'Mumbai Hardware Traders', 10, 6, 2, 'blocked', '2020-02-03 10:00'),
  (12, 'SUP-012', 'Northern Office Supply', 5, 3, 4, 'active', '2016-03-21 10:00'),
  (13, 'SUP-013', 'Maple Tech Distribution', 7, 8, 3, 'active', '2019-12-02 10:00'),
  (14, 'SUP-014', 'Sydney Gadget Co', 12, 9, NULL, 'inactive', '2021-08-16 10:00'),
  (15, 'SUP-015', 'Shenzhen Display Works', 9, 5, 4, 'active', '2018-10-29 10:00');

INSERT INTO supplier_contacts
SELECT g, (g * 7) % 15 + 1, n.fn[(g * 11) % 30 + 1] || ' ' || n.ln[(g * 5) % 24 + 1],
       CASE WHEN g % 6 = 0 THEN NULL ELSE 'contact' || g || '@supplier.example' END,
       '+00 555 ' || lpad((g * 7919 % 10000)::text, 4, '0'),
       (ARRAY['Account Manager', 'Sales Engineer', 'Key Account Manager', 'Order Desk'])[g % 4 + 1]
  FROM generate_series(1, 30) g, tmp_names n;

INSERT INTO products VALUES
  (1, 'LAP-1001', 'ProBook 14', 2, 1, 1199.00, 860.00, 'active', '2022-01-10 09:00'),
  (2, 'LAP-1002', 'ProBook 16', 2, 1, 1499.00, 1080.00, 'active', '2022-01-10 09:00'),
  (3, 'LAP-1003', 'AirLite 13', 2, 5, 999.00, 720.00, 'active', '2023-03-01 09:00'),
  (4, 'LAP-1004', 'WorkStation X1', 2, 1, 2399.00, 1750.00, 'active', '2023-06-15 09:00'),
  (5, 'LAP-1005', 'EduBook 11', 2, 2, 399.00, 260.00, 'discontinued', '2020-08-20 09:00'),
  (6, 'MON-2001', 'ViewMax 24', 3, 3, 219.00, 140.00, 'active', '2021-05-05 09:00'),
  (7, 'MON-2002', 'ViewMax 27', 3, 3, 329.00, 215.00, 'active', '2021-05-05 09:00'),
  (8, 'MON-2003', 'UltraWide 34', 3, 15, 649.00, 430.00, 'active', '2022-09-12 09:00'),
  (9, 'MON-2004', 'ColorPro 32', 3, 3, 1149.00, 790.00, 'active', '2024-02-01 09:00'),
  (10, 'CAB-3001', 'USB-C Cable 1m', 4, 4, 12.90, 3.10, 'active', '2020-01-15 09:00'),
  (11, 'CAB-3002', 'USB-C Cable 2m', 4, 4, 16.90, 4.20, 'active', '2020-01-15 09:00'),
  (12, 'CAB-3003', 'HDMI Cable 2m', 4, 4, 14.50, 3.60, 'active', '2020-01-15 09:00'),
  (13, 'CAB-3004', 'DisplayPort Cable 2m', 4, 4, 18.90, 4.90, 'discontinued', '2020-01-15 09:00'),
  (14, 'CAB-3005', 'USB-C Hub 7-in-1', 4, 2, 59.00, 24.00, 'active', '2022-04-04 09:00'),
  (15, 'CAB-3006', 'Ethernet Cable 5m', 4, 4, 9.90, 2.10, 'active', '2020-01-15 09:00'),
  (16, 'CAB-3007', 'Power Adapter 65W', 4, 2, 45.00, 19.00, 'active', '2021-11-11 09:00'),
  (17, 'PER-4001', 'Wireless Mouse', 5, 5, 29.00, 11.00, 'active', '2020-03-03 09:00'),
  (18, 'PER-4002', 'Ergonomic Keyboard', 5, 5, 89.00, 41.00, 'active', '2021-02-14 09:00'),
  (19, 'PER-4003', 'Webcam HD', 5, 5, 79.00, 35.00, 'active', '2020-06-30 09:00'),
  (20, 'PER-4004', 'Headset Pro', 5, 5, 129.00, 62.00, 'active', '2021-09-09 09:00'),
  (21, 'PER-4005', 'Docking Station', 5, 1, 249.00, 150.00, 'active', '2022-07-07 09:00'),
  (22, 'PER-4006', 'Laser Printer', 5, 13, 389.00, 240.00, 'active', '2019-10-10 09:00'),
  (23, 'LIC-5001', 'Office Suite Licence', 7, 6, 249.00, 180.00, 'active', '2019-01-01 09:00'),
  (24, 'LIC-5002', 'Antivirus Licence', 7, 6, 49.00, 28.00, 'active', '2019-01-01 09:00'),
  (25, 'LIC-5003', 'CAD Designer Licence', 7, 6, 1890.00, 1400.00, 'active', '2021-01-01 09:00'),
  (26, 'LIC-5004', 'Database Server Licence', 7, 6, 3200.00, 2500.00, 'active', '2022-01-01 09:00'),
  (27, 'SUB-6001', 'Cloud Backup 1TB', 8, 7, 99.00, 55.00, 'active', '2021-03-15 09:00'),
  (28, 'SUB-6002', 'Video Meetings Plan', 8, 7, 144.00, 90.00, 'active', '2020-04-01 09:00'),
  (29, 'SUB-6003', 'Project Tracker Plan', 8, 7, 120.00, 70.00, 'draft', '2025-09-01 09:00'),
  (30, 'FUR-7001', 'Standing Desk', 10, 8, 549.00, 330.00, 'active', '2021-01-20 09:00'),
  (31, 'FUR-7002', 'Office Chair Comfort', 10, 8, 289.00, 160.00, 'active', '2021-01-20 09:00'),
  (32, 'FUR-7003', 'Filing Cabinet', 10, 12, 199.00, 110.00, 'discontinued', '2018-05-05 09:00'),
  (33, 'FUR-7004', 'Meeting Table', 10, 8, 899.00, 560.00, 'active', '2022-02-02 09:00'),
  (34, 'STA-8001', 'A4 Paper Box', 11, 9, 24.00, 13.00, 'active', '2018-01-01 09:00'),
  (35, 'STA-8002', 'Notebook Pack', 11, 9, 15.00, 6.00, 'active', '2018-01-01 09:00'),
  (36, 'STA-8003', 'Whiteboard Markers', 11, 12, 8.50, 3.00, 'active', '2018-01-01 09:00'),
  (37, 'SRV-9001', 'On-site Setup', 13, 10, 450.00, 300.00, 'active', '2019-01-01 09:00'),
  (38, 'SRV-9002', 'Network Installation', 13, 10, 1200.00, 800.00, 'active', '2019-01-01 09:00'),
  (39, 'SRV-9003', 'Hardware Care 1 Year', 14, NULL, 150.00, 40.00, 'active', '2020-01-01 09:00'),
  (40, 'SRV-9004', 'Hardware Care 3 Years', 14, NULL, 390.00, 110.00, 'active', '2020-01-01 09:00');

INSERT INTO warehouses VALUES
  (1, 'WH-LYO', 'Lyon Central Warehouse', 2, 'active'),
  (2, 'WH-BER', 'Berlin North Hub', 3, 'active'),
  (3, 'WH-MAD', 'Madrid South Depot', 4, 'active'),
  (4, 'WH-BOS', 'Boston East Warehouse', 6, 'active'),
  (5, 'WH-TOR', 'Toronto Distribution Centre', 7, 'active'),
  (6, 'WH-MAN', 'Manchester Overflow Store', 5, 'closed');

INSERT INTO bins
SELECT row_number() OVER (ORDER BY w, k), w, chr(64 + (k - 1) / 6 + 1) || '-' || lpad(((k - 1) % 6 + 1)::text, 2, '0'),
       chr(64 + (k - 1) / 6 + 1), (ARRAY[200, 400, 800, 100])[k % 4 + 1]
  FROM (VALUES (1, 30), (2, 24), (3, 16), (4, 20), (5, 12), (6, 6)) c(w, n), generate_series(1, n) k;

-- physical products (hardware and office) are stocked; each in two or three bins
INSERT INTO stock_levels
SELECT p.id, b.id, (p.id * 37 + b.id * 11) % 180 + 5, date '2025-10-01' + (p.id + b.id) % 60
  FROM products p JOIN product_categories pc ON pc.id = p.category_id
  JOIN bins b ON b.warehouse_id <> 6 AND (b.id * 3 + p.id * 5) % 41 = 0
 WHERE pc.parent_id IN (1, 9);

INSERT INTO stock_movements
SELECT g, sl.product_id, sl.bin_id, mt.t,
       CASE WHEN mt.t IN ('receipt', 'return') THEN (g % 40) + 5
            WHEN mt.t = 'issue' THEN -((g % 25) + 1)
            WHEN mt.t = 'adjustment' THEN (g % 7) - 3
            ELSE (g % 30) + 1 END,
       timestamp '2024-01-02 07:00' + ((g * 13) % 700) * interval '1 day' + (g % 10) * interval '1 hour',
       CASE WHEN mt.t = 'receipt' THEN 'GR-' || lpad((g % 90 + 1)::text, 5, '0')
            WHEN mt.t = 'issue' THEN 'SO-' || lpad((g % 240 + 1)::text, 5, '0') END
  FROM generate_series(1, 450) g
  JOIN (SELECT product_id, bin_id, row_number() OVER (ORDER BY product_id, bin_id) AS rn, count(*) OVER () AS cnt FROM stock_levels) sl
    ON sl.rn = (g * 7) % sl.cnt + 1,
       LATERAL (SELECT (ARRAY['receipt', 'issue', 'issue', 'transfer', 'issue', 'receipt', 'adjustment', 'issue', 'return', 'issue'])[g % 10 + 1] AS t) mt;

INSERT INTO purchase_orders
SELECT g, 'PO-' || lpad(g::text, 5, '0'), sp.s, (g % 5) + 1, od, od + 14 + (g % 3) * 7,
       CASE WHEN g % 12 = 0 THEN 'cancelled' WHEN g % 10 = 0 THEN 'draft' WHEN g % 7 = 0 THEN 'sent'
            WHEN g % 5 = 0 THEN 'partially_received' ELSE 'received' END,
       (SELECT currency_id FROM suppliers WHERE id = sp.s),
       (ARRAY[19, 39, 59, 79, 99, 119])[g % 6 + 1]
  FROM generate_series(1, 130) g,
       LATERAL (SELECT (ARRAY[1, 2, 3, 4, 5, 6, 8, 9, 12, 13, 15, 1, 3, 5, 8, 1, 10, 2, 4, 1])[(g * 3) % 20 + 1] AS s) sp,
       LATERAL (SELECT date '2024-01-04' + (g * 11) % 710 AS od) o;

-- each line orders a different product of the supplier's catalogue
INSERT INTO purchase_order_lines
SELECT row_number() OVER (ORDER BY po.id, k), po.id, p.id, (po.id * 7 + k * 13) % 40 + 5, p.unit_cost
  FROM purchase_orders po
  JOIN LATERAL (SELECT array_agg(id ORDER BY id) AS ids FROM products WHERE default_supplier_id = po.supplier_id) sp ON true,
       generate_series(0, 2) k
  JOIN products p ON true
 WHERE k < least(1 + po.id % 3, cardinality(sp.ids)) AND p.id = sp.ids[(po.id + k) % cardinality(sp.ids) + 1];

INSERT INTO goods_receipts
SELECT row_number() OVER (ORDER BY po.id), 'GR-' || lpad((row_number() OVER (ORDER BY po.id))::text, 5, '0'), po.id,
       po.expected_on + (po.id % 9) - 3, (ARRAY[15, 57, 87, 107])[po.id % 4 + 1],
       CASE WHEN po.id % 23 = 0 THEN 'draft' ELSE 'posted' END
  FROM purchase_orders po WHERE po.status IN ('received', 'partially_received');

INSERT INTO goods_receipt_lines
SELECT row_number() OVER (ORDER BY gr.id, pol.id), gr.id, pol.id,
       CASE WHEN po.status = 'partially_received' THEN pol.quantity / 2 ELSE pol.quantity END,
       CASE WHEN pol.id % 8 = 0 THEN pol.id % 3 + 1 ELSE 0 END
  FROM goods_receipts gr JOIN purchase_orders po ON po.id = gr.purchase_order_id
  JOIN purchase_order_lines pol ON pol.purchase_order_id = po.id;

-- ===================================================================== data: sales
INSERT INTO customers
SELECT g, 'C' || lpad(g::text, 4, '0'),
       (ARRAY['Acme', 'Blue Harbor', 'Crestline', 'Delta', 'Evergreen', 'Falcon', 'Granite', 'Helios',
              'Ironwood', 'Juniper', 'Keystone', 'Lumen', 'Meridian', 'Northwind', 'Orion', 'Pinnacle'])[(g - 1) / 5 + 1]
       || ' ' || (ARRAY['Logistics', 'Retail', 'Health', 'Energy', 'Systems'])[(g - 1) % 5 + 1],
       ct.c, (SELECT currency_id FROM countries WHERE id = ct.c),
       CASE WHEN g % 4 = 0 THEN 'enterprise' WHEN g % 7 = 0 THEN 'public' ELSE 'smb' END,
       (g % 6 + 1) * 10000,
       (ARRAY[4, 8, 10, 13, 15, 18, 7, 23, 24, 28, 32, 38, 44, 52, 55, 58, 64, 72, 78, 84, 92, 104, 112, 115])[(g * 5) % 24 + 1],
       CASE WHEN g % 13 = 0 THEN 'prospect' WHEN g % 11 = 0 THEN 'inactive' ELSE 'active' END,
       timestamp '2019-01-01 10:00' + ((g * 53) % 2400) * interval '1 day' + (g % 8) * interval '1 hour'
  FROM generate_series(1, 80) g,
       LATERAL (SELECT (ARRAY[1, 1, 2, 2, 2, 3, 1, 4, 5, 5, 6, 6, 6, 7, 8, 2, 9, 10, 11, 12, 13, 1, 2, 6])[(g * 5) % 24 + 1] AS c) ct;

-- contacts 1..80 are the primary contacts of customers 1..80
INSERT INTO customer_contacts
SELECT g, (g - 1) % 80 + 1, n.fn[(g * 7) % 30 + 1], n.ln[(g * 5) % 24 + 1],
       lower(n.fn[(g * 7) % 30 + 1]) || '.' || lower(n.ln[(g * 5) % 24 + 1]) || g || '@client.example',
       CASE WHEN g % 5 = 0 THEN NULL ELSE '+00 444 ' || lpad((g * 6113 % 10000)::text, 4, '0') END,
       (ARRAY['Purchasing Manager', 'IT Director', 'Office Manager', 'CFO', 'Operations Lead'])[g % 5 + 1],
       g <= 80
  FROM generate_series(1, 125) g, tmp_names n;

INSERT INTO quotes
SELECT g, 'Q-' || lpad(g::text, 5, '0'), c.id, c.account_manager_id, iss, iss + 30,
       CASE WHEN g % 3 = 0 THEN 'accepted' WHEN g % 7 = 0 THEN 'rejected' WHEN g % 8 = 0 THEN 'expired'
            WHEN g % 10 = 1 THEN 'draft' ELSE 'sent' END,
       0
  FROM generate_series(1, 200) g
  JOIN customers c ON c.id = (g * 7) % 80 + 1,
       LATERAL (SELECT date '2024-01-02' + (g * 3) % 690 AS iss) i;

INSERT INTO quote_lines
SELECT row_number() OVER (ORDER BY q.id, k), q.id, p.id, (q.id + k * 3) % 9 + 1, p.unit_price
  FROM quotes q, generate_series(0, 2) k
  JOIN products p ON true
 WHERE p.id = nullif((q.id * 3 + k * 11) % 40 + 1, 29) AND k <= q.id % 3
    OR p.id = 27 AND (q.id * 3 + k * 11) % 40 + 1 = 29 AND k <= q.id % 3;
UPDATE quotes q SET total_amount = coalesce((SELECT sum(quantity * unit_price) FROM quote_lines l WHERE l.quote_id = q.id), 0);

-- orders 1..66 come from the accepted quotes 3, 6, ..., 198; the others were placed directly
INSERT INTO sales_orders
SELECT g, 'SO-' || lpad(g::text, 5, '0'), c.id, q.id, coalesce(q.sales_rep_id, c.account_manager_id),
       CASE WHEN c.country_id IN (6, 7, 11) THEN 4 + (g % 2) ELSE (g % 3) + 1 END,
       coalesce(q.issued_on + 5 + g % 10, date '2024-01-03' + (g * 7) % 720),
       CASE WHEN g % 10 = 0 THEN 'cancelled' WHEN g % 10 IN (1, 2) THEN 'confirmed' WHEN g % 10 = 3 THEN 'open'
            WHEN g % 10 IN (4, 5, 6) THEN 'shipped' ELSE 'delivered' END,
       c.currency_id
  FROM generate_series(1, 240) g
  LEFT JOIN quotes q ON q.id = g * 3 AND g <= 66
  JOIN customers c ON c.id = coalesce(q.customer_id,
                                       CASE WHEN ((g * 11) % 80 + 1) % 13 = 0 THEN (g * 11) % 80 + 2 ELSE (g * 11) % 80 + 1 END);

INSERT INTO sales_order_lines
SELECT row_number() OVER (ORDER BY so.id, k), so.id, p.id, (so.id * 3 + k * 5) % 12 + 1, p.unit_price,
       CASE WHEN (so.id + k) % 6 = 0 THEN 10 WHEN (so.id + k) % 9 = 0 THEN 5 ELSE 0 END
  FROM sales_orders so, generate_series(0, 3) k
  JOIN products p ON true
 WHERE p.id = nullif((so.id * 7 + k * 13) % 40 + 1, 29) AND k <= so.id % 4
    OR p.id = 27 AND (so.id * 7 + k * 13) % 40 + 1 = 29 AND k <= so.id % 4;
-- orders from quotes copy the quote lines instead
DELETE FROM sales_order_lines WHERE sales_order_id <= 66;
INSERT INTO sales_order_lines
SELECT 1000 + row_number() OVER (ORDER BY so.id, ql.id), so.id, ql.product_id, ql.quantity, ql.unit_price, 0
  FROM sales_orders so JOIN quote_lines ql ON ql.quote_id = so.quote_id;

INSERT INTO shipments
SELECT row_number() OVER (ORDER BY so.id), so.id, so.warehouse_id,
       (ARRAY['DHL', 'UPS', 'DHL', 'DPD', 'FedEx', 'DHL', 'UPS', 'Chronopost', 'DPD', 'GLS', 'DHL'])[so.id % 11 + 1],
       'TRK' || lpad((so.id * 7919 % 1000000)::text, 6, '0'),
       so.ordered_on + 2 + so.id % 4,
       CASE WHEN so.status = 'delivered' THEN so.ordered_on + 5 + so.id % 6 END,
       CASE WHEN so.status = 'delivered' THEN 'delivered' WHEN so.id % 25 = 0 THEN 'returned' ELSE 'in_transit' END
  FROM sales_orders so WHERE so.status IN ('shipped', 'delivered');

INSERT INTO invoices
SELECT row_number() OVER (ORDER BY so.id), 'INV-' || lpad((row_number() OVER (ORDER BY so.id))::text, 5, '0'),
       so.id, so.customer_id, so.ordered_on + 3, so.ordered_on + 33,
       (SELECT round(sum(quantity * unit_price * (1 - discount_pct / 100)), 2) FROM sales_order_lines l WHERE l.sales_order_id = so.id),
       so.currency_id, 'paid'
  FROM sales_orders so WHERE so.status IN ('shipped', 'delivered');
UPDATE invoices SET status = CASE id % 10 WHEN 0 THEN 'overdue' WHEN 1 THEN 'issued' WHEN 2 THEN 'partially_paid'
                                          WHEN 3 THEN 'void' ELSE 'paid' END;

INSERT INTO payments
SELECT row_number() OVER (ORDER BY i.id, k), i.id, i.issued_on + 10 + (i.id % 20) + k * 7,
       CASE WHEN i.status = 'partially_paid' THEN round(i.total_amount * 0.4, 2)
            WHEN i.id % 4 = 0 AND k = 0 THEN round(i.total_amount / 2, 2)
            WHEN i.id % 4 = 0 THEN i.total_amount - round(i.total_amount / 2, 2)
            ELSE i.total_amount END,
       (ARRAY['bank_transfer', 'card', 'bank_transfer', 'direct_debit', 'cheque', 'bank_transfer', 'card'])[(i.id + k) % 7 + 1],
       'PAY-' || i.id || '-' || k
  FROM invoices i, generate_series(0, 1) k
 WHERE i.status IN ('paid', 'partially_paid') AND (k = 0 OR (i.status = 'paid' AND i.id % 4 = 0));

INSERT INTO credit_notes
SELECT row_number() OVER (ORDER BY i.id), 'CN-' || lpad((row_number() OVER (ORDER BY i.id))::text, 4, '0'),
       i.id, i.customer_id, i.issued_on + 20 + i.id % 15,
       CASE WHEN i.status = 'void' THEN i.total_amount ELSE round(i.total_amount * (0.05 + (i.id % 4) * 0.05), 2) END,
       CASE WHEN i.status = 'void' THEN 'Invoice cancelled'
            ELSE (ARRAY['Damaged goods', 'Pricing error', 'Returned items', 'Goodwill gesture'])[i.id % 4 + 1] END,
       CASE WHEN i.id % 5 = 0 AND i.id % 4 <> 0 THEN 'draft' WHEN i.status = 'void' THEN 'issued' ELSE 'applied' END
  FROM invoices i WHERE i.status = 'void' OR i.id % 7 = 0;

-- ===================================================================== data: projects
INSERT INTO projects VALUES
  (1, 'PRJ-APOLLO', 'Apollo ERP Rollout', 4, 19, 10, '2024-01-15', '2024-12-20', 180000, 'completed'),
  (2, 'PRJ-BOREAL', 'Borealis Data Platform', 12, 19, 10, '2024-03-01', NULL, 240000, 'active'),
  (3, 'PRJ-CASC', 'Cascade Network Upgrade', 20, 9, 7, '2024-05-06', '2025-02-28', 95000, 'completed'),
  (4, 'PRJ-DYN', 'Dynamo Mobile App', 8, 19, 10, '2024-09-02', NULL, 150000, 'active'),
  (5, 'PRJ-EVER', 'Everest Warehouse Automation', NULL, 11, 8, '2024-02-12', NULL, 320000, 'active'),
  (6, 'PRJ-FJORD', 'Fjord Customer Portal', 36, 19, 10, '2025-01-13', NULL, 120000, 'active'),
  (7, 'PRJ-GLAC', 'Glacier Backup Migration', NULL, 9, 7, '2025-03-03', NULL, 60000, 'on_hold'),
  (8, 'PRJ-HARB', 'Harbor Office Relocation', NULL, 20, 12, '2024-06-01', '2024-11-30', 75000, 'completed'),
  (9, 'PRJ-IRIS', 'Iris BI Dashboards', 44, 15, 10, '2025-04-07', NULL, 85000, 'active'),
  (10, 'PRJ-JADE', 'Jade CRM Integration', 16, 15, 10, '2024-10-14', '2025-06-30', 110000, 'completed'),
  (11, 'PRJ-KITE', 'Kite Marketing Website', NULL, 8, 6, '2025-02-03', NULL, 45000, 'active'),
  (12, 'PRJ-LYNX', 'Lynx Security Audit', 60, 9, 7, '2025-06-02', NULL, 55000, 'planned'),
  (13, 'PRJ-MESA', 'Mesa Payroll Upgrade', NULL, 2, 2, '2024-04-08', '2024-09-27', 40000, 'completed'),
  (14, 'PRJ-NOVA', 'Nova Supplier Portal', NULL, 19, 11, '2025-05-12', NULL, 90000, 'active'),
  (15, 'PRJ-ORCA', 'Orca Field Service Tool', 28, 15, 10, '2024-07-01', NULL, 130000, 'cancelled'),
  (16, 'PRJ-PEAK', 'Peak Sales Training', NULL, 4, 4, '2025-09-01', NULL, 30000, 'planned'),
  (17, 'PRJ-QUAR', 'Quartz E-invoicing', 72, 2, 2, '2025-01-20', NULL, 70000, 'active'),
  (18, 'PRJ-RIDGE', 'Ridge Helpdesk Revamp', NULL, 12, 9, '2024-11-04', '2025-08-29', 65000, 'completed');

INSERT INTO project_tasks
SELECT g, p.id,
       (ARRAY['Requirements workshop', 'Solution design', 'Data migration', 'Build integration', 'User acceptance testing',
              'Training material', 'Go-live support', 'Documentation', 'Performance tuning', 'Security review'])[g % 10 + 1],
       (ARRAY[19, 15, 30, 33, 35, 45, 50, 55, 75, 90, 95, 110, 9, 29, 49, 12, 42])[(g * 7) % 17 + 1],
       CASE WHEN p.status = 'completed' THEN 'done'
            WHEN p.status = 'planned' THEN 'todo'
            ELSE (ARRAY['todo', 'in_progress', 'done', 'done', 'blocked', 'in_progress'])[g % 6 + 1] END,
       (ARRAY['low', 'medium', 'medium', 'high'])[g % 4 + 1],
       (g % 6 + 1) * 8,
       p.start_date + 20 + (g * 9) % 200
  FROM generate_series(1, 170) g
  JOIN projects p ON p.id = (g * 5) % 18 + 1;

INSERT INTO milestones
SELECT row_number() OVER (ORDER BY p.id, k), p.id,
       (ARRAY['Kick-off', 'Design sign-off', 'Go-live'])[k],
       p.start_date + (k - 1) * 90 + 14,
       CASE WHEN p.status = 'completed' OR (p.status = 'active' AND p.start_date + (k - 1) * 90 + 14 < date '2025-10-01')
            THEN p.start_date + (k - 1) * 90 + 14 + ((p.id * 3 + k * 5) % 11) - 4 END,
       round(p.budget_amount * (ARRAY[0.2, 0.3, 0.5])[k], 2)
  FROM projects p, generate_series(1, 3) k
 WHERE p.status <> 'cancelled' OR k = 1;

INSERT INTO timesheets
SELECT g, t.assignee_id, t.id, least(wd, date '2025-11-28'), (g % 8 + 1) * 0.5 + (g % 3),
       p.customer_id IS NOT NULL AND g % 5 <> 0, g % 13 <> 0
  FROM generate_series(1, 900) g
  JOIN project_tasks t ON t.id = (g * 7) % 170 + 1
  JOIN projects p ON p.id = t.project_id,
       LATERAL (SELECT p.start_date + (g * 3) % 300 AS wd) w
 WHERE t.status <> 'todo';

-- ===================================================================== data: support
INSERT INTO slas VALUES
  (1, 'BRONZE', 'Bronze', 48, 240), (2, 'SILVER', 'Silver', 24, 120),
  (3, 'GOLD', 'Gold', 8, 48), (4, 'PLATINUM', 'Platinum', 2, 24);

INSERT INTO tickets
SELECT g, 'TCK-' || lpad(g::text, 5, '0'), c.id, c.id, CASE WHEN g % 6 = 0 THEN NULL ELSE (g * 13) % 40 + 1 END,
       CASE c.segment WHEN 'enterprise' THEN 3 + (c.id / 4) % 2 WHEN 'public' THEN 2 ELSE 1 + (g % 3 = 0)::int END,
       CASE WHEN g % 15 = 0 THEN NULL ELSE (ARRAY[9, 13, 29, 33, 49, 53, 69, 73, 89, 93, 109, 113, 12, 32, 52, 72, 92, 112])[g % 18 + 1] END,
       (ARRAY['Cannot log in', 'Invoice question', 'Device not starting', 'Slow performance', 'Licence activation',
              'Delivery delayed', 'Wrong item received', 'Feature request', 'Data export fails', 'Password reset'])[g % 10 + 1],
       (ARRAY['low', 'medium', 'medium', 'high', 'low', 'urgent', 'medium', 'high'])[g % 8 + 1],
       st.s,
       op,
       CASE WHEN st.s IN ('resolved', 'closed') THEN op + ((g * 7) % 96 + 1) * interval '1 hour' END
  FROM generate_series(1, 320) g
  JOIN customers c ON c.id = (g * 17) % 80 + 1,
       LATERAL (SELECT timestamp '2024-01-03 08:00' + ((g * 23) % 690) * interval '1 day' + (g % 10) * interval '1 hour' AS op) o,
       LATERAL (SELECT CASE WHEN op > timestamp '2025-10-15' THEN (ARRAY['open', 'in_progress', 'waiting'])[g % 3 + 1]
                            WHEN g % 9 = 0 THEN 'open' WHEN g % 11 = 0 THEN 'in_progress' WHEN g % 14 = 0 THEN 'waiting'
                            WHEN g % 2 = 0 THEN 'closed' ELSE 'resolved' END AS s) st;

INSERT INTO ticket_comments
SELECT row_number() OVER (ORDER BY t.id, k), t.id,
       CASE WHEN k % 2 = 1 THEN NULL ELSE coalesce(t.assigned_to, 9) END,
       CASE WHEN k % 2 = 1 THEN 'Customer reply ' || k ELSE 'Agent update ' || k END,
       k % 2 = 0 AND (t.id + k) % 3 = 0,
       t.opened_at + (k + 1) * interval '3 hours'
  FROM tickets t, generate_series(0, 5) k
 WHERE k < (t.id * 7) % 5 + 1 OR (t.id = 137 AND k < 6);

-- ===================================================================== data: fleet
INSERT INTO vehicles VALUES
  (1, 'FR-412-AB', 'Renault', 'Clio', 2021, 1, 'petrol', 'active', '2021-03-15'),
  (2, 'FR-733-KL', 'Peugeot', '308 SW', 2022, 1, 'diesel', 'active', '2022-01-10'),
  (3, 'FR-905-ZT', 'Renault', 'Megane E-Tech', 2023, 1, 'electric', 'active', '2023-05-22'),
  (4, 'FR-218-MP', 'Renault', 'Master', 2020, 2, 'diesel', 'active', '2020-09-01'),
  (5, 'FR-650-QC', 'Citroen', 'Berlingo', 2019, 2, 'diesel', 'in_service', '2019-04-12'),
  (6, 'FR-377-HD', 'Toyota', 'Corolla Hybrid', 2022, 2, 'hybrid', 'active', '2022-06-30'),
  (7, 'B-NW-4821', 'Volkswagen', 'Passat', 2021, 3, 'diesel', 'active', '2021-02-08'),
  (8, 'B-NW-7340', 'Volkswagen', 'ID.4', 2023, 3, 'electric', 'active', '2023-09-18'),
  (9, 'B-NW-1197', 'Mercedes-Benz', 'Sprinter', 2018, 3, 'diesel', 'retired', '2018-03-05'),
  (10, '4821-LMK', 'Seat', 'Leon', 2020, 4, 'petrol', 'active', '2020-11-23'),
  (11, '7730-KPD', 'Toyota', 'C-HR Hybrid', 2023, 4, 'hybrid', 'active', '2023-02-14'),
  (12, 'MA21 XKD', 'Ford', 'Transit', 2021, 5, 'diesel', 'active', '2021-07-19'),
  (13, 'MA23 PLO', 'Ford', 'Focus', 2023, 5, 'petrol', 'active', '2023-03-01'),
  (14, 'MA-8TK-22', 'Tesla', 'Model 3', 2022, 6, 'electric', 'active', '2022-08-08'),
  (15, 'MA-3RD-19', 'Ford', 'F-150', 2019, 6, 'petrol', 'active', '2019-05-27'),
  (16, 'ONT-CXPR-77', 'Toyota', 'RAV4 Hybrid', 2021, 7, 'hybrid', 'active', '2021-10-04'),
  (17, 'ONT-BKLM-02', 'Chevrolet', 'Express', 2020, 7, 'petrol', 'in_service', '2020-01-20'),
  (18, 'FR-120-AA', 'Peugeot', 'Partner', 2017, 2, 'diesel', 'retired', '2017-06-06');

INSERT INTO trips
SELECT g, v.id, (ARRAY[8, 14, 20, 27, 34, 41, 47, 54, 61, 68, 74, 81, 88, 95, 101, 108])[g % 16 + 1],
       st, st + ((g % 6 + 1) * interval '50 minutes'),
       10000 + v.id * 3000 + g * 40, 10000 + v.id * 3000 + g * 40 + (g * 17) % 180 + 8,
       (ARRAY['Customer visit', 'Delivery', 'Site inspection', 'Airport transfer', 'Supplier visit'])[g % 5 + 1]
  FROM generate_series(1, 300) g
  JOIN vehicles v ON v.id = (ARRAY[1, 2, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 2, 4, 7, 12])[(g * 5) % 18 + 1],
       LATERAL (SELECT timestamp '2024-01-08 08:00' + ((g * 7) % 690) * interval '1 day' + (g % 8) * interval '1 hour' AS st) s;

INSERT INTO fuel_logs
SELECT g, v.id, date '2024-01-05' + (g * 9) % 700, l.litres,
       round(l.litres * (CASE v.fuel_type WHEN 'diesel' THEN 1.72 ELSE 1.84 END + (g % 5) * 0.03), 2),
       20000 + v.id * 3000 + g * 60,
       (ARRAY['TotalEnergies', 'Shell', 'Esso', 'BP', 'Aral'])[g % 5 + 1]
  FROM generate_series(1, 240) g
  JOIN vehicles v ON v.id = (ARRAY[1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 15, 16, 17, 2, 4, 12, 7, 18, 4])[(g * 3) % 20 + 1],
       LATERAL (SELECT (30 + (g * 13) % 45 + (g % 4) * 0.25)::numeric(6, 2) AS litres) l;

INSERT INTO vehicle_maintenance
SELECT g, (g * 7) % 18 + 1, date '2024-01-15' + (g * 17) % 690,
       (ARRAY['service', 'tyres', 'repair', 'inspection', 'service'])[g % 5 + 1],
       ((g * 89) % 900 + 80)::numeric(8, 2),
       (ARRAY['Norauto', 'Feu Vert', 'ATU', 'Kwik Fit', 'Midas'])[g % 5 + 1]
  FROM generate_series(1, 45) g;

-- ===================================================================== data: marketing
INSERT INTO channels VALUES
  (1, 'EMAIL', 'Email'), (2, 'LINKEDIN', 'LinkedIn'), (3, 'GOOGLE', 'Google Ads'), (4, 'EVENTS', 'Trade shows & events'),
  (5, 'WEBINAR', 'Webinars'), (6, 'PARTNER', 'Partner referrals'), (7, 'PRINT', 'Print advertising'), (8, 'SOCIAL', 'Social media');

INSERT INTO campaigns VALUES
  (1, 'CMP-24-01', 'Spring Laptop Promo', 1, 40, '2024-03-01', '2024-04-15', 12000, 'finished'),
  (2, 'CMP-24-02', 'CeBIT Booth 2024', 4, 40, '2024-03-18', '2024-03-22', 45000, 'finished'),
  (3, 'CMP-24-03', 'IT Managers LinkedIn', 2, 88, '2024-04-01', '2024-06-30', 18000, 'finished'),
  (4, 'CMP-24-04', 'Search Always-On 2024', 3, 88, '2024-01-01', '2024-12-31', 36000, 'finished'),
  (5, 'CMP-24-05', 'Cloud Backup Webinar', 5, 40, '2024-05-14', '2024-05-14', 3000, 'finished'),
  (6, 'CMP-24-06', 'Back to Office Furniture', 1, 88, '2024-08-26', '2024-09-30', 8000, 'finished'),
  (7, 'CMP-24-07', 'Partner Referral Programme', 6, 40, '2024-06-01', '2024-12-31', 15000, 'finished'),
  (8, 'CMP-24-08', 'Year-End Licence Deals', 1, 88, '2024-11-15', '2024-12-20', 9000, 'finished'),
  (9, 'CMP-24-09', 'Trade Magazine Ads', 7, 40, '2024-09-01', '2024-11-30', 22000, 'finished'),
  (10, 'CMP-25-01', 'New Year Hardware Refresh', 1, 40, '2025-01-06', '2025-02-28', 10000, 'finished'),
  (11, 'CMP-25-02', 'Search Always-On 2025', 3, 88, '2025-01-01', '2025-12-31', 40000, 'running'),
  (12, 'CMP-25-03', 'CFO LinkedIn Series', 2, 88, '2025-02-10', '2025-05-30', 21000, 'finished'),
  (13, 'CMP-25-04', 'Security Awareness Webinar', 5, 40, '2025-03-20', '2025-03-20', 2500, 'finished'),
  (14, 'CMP-25-05', 'Summer Social Push', 8, 88, '2025-06-01', '2025-08-31', 7000, 'finished'),
  (15, 'CMP-25-06', 'Smart Office Expo 2025', 4, 40, '2025-09-23', '2025-09-25', 38000, 'finished'),
  (16, 'CMP-25-07', 'Data Platform LinkedIn', 2, 88, '2025-09-01', '2025-12-15', 16000, 'running'),
  (17, 'CMP-25-08', 'Black Friday Accessories', 1, 40, '2025-11-20', '2025-12-01', 6000, 'running'),
  (18, 'CMP-26-01', 'Spring Expo 2026', 4, 40, '2026-03-10', '2026-03-12', 42000, 'planned'),
  (19, 'CMP-25-09', 'Radio Spots Lyon', 7, 88, '2025-04-01', '2025-04-30', 11000, 'cancelled');

INSERT INTO leads
SELECT g, CASE WHEN g % 17 = 0 THEN NULL ELSE cp.c END,
       n.fn[(g * 13) % 30 + 1], n.ln[(g * 7) % 24 + 1],
       (ARRAY['Vortex', 'Summit', 'Cobalt', 'Redwood', 'Atlas', 'Nimbus', 'Quantum', 'Sierra', 'Titan', 'Zenith'])[g % 10 + 1]
       || ' ' || (ARRAY['Labs', 'Group', 'GmbH', 'SAS', 'Ltd', 'Inc'])[g % 6 + 1],
       CASE WHEN g % 8 = 0 THEN NULL ELSE 'lead' || g || '@prospect.example' END,
       (ARRAY[1, 2, 3, 5, 6, 1, 2, 7, 13, 4, 8, 1])[g % 12 + 1],
       (g * 37) % 101,
       ls.s,
       CASE WHEN ls.s = 'converted' THEN (g * 3) % 80 + 1 END,
       (SELECT start_date FROM campaigns WHERE id = cp.c) + (g % 20) + time '11:00'
  FROM generate_series(1, 420) g, tmp_names n,
       LATERAL (SELECT (ARRAY[1, 2, 2, 3, 4, 4, 5, 6, 7, 7, 8, 9, 10, 11, 11, 12, 13, 14, 15, 15, 15, 16, 17, 2, 11, 15])[(g * 7) % 26 + 1] AS c) cp,
       LATERAL (SELECT CASE WHEN g % 9 = 0 THEN 'converted' WHEN g % 5 = 0 THEN 'lost' WHEN g % 4 = 0 THEN 'qualified'
                            WHEN g % 3 = 0 THEN 'contacted' ELSE 'new' END AS s) ls;

-- ===================================================================== data: assets
INSERT INTO asset_categories VALUES
  (1, 'AC-LAPTOP', 'Laptops', 3), (2, 'AC-MONITOR', 'Monitors', 5), (3, 'AC-PHONE', 'Mobile phones', 2),
  (4, 'AC-FURN', 'Office furniture', 10), (5, 'AC-SERVER', 'Servers', 5), (6, 'AC-PRINT', 'Printers', 5),
  (7, 'AC-FORK', 'Forklifts', 8), (8, 'AC-AV', 'Audio-visual equipment', 5);

INSERT INTO assets
SELECT g, 'AST-' || lpad(g::text, 5, '0'),
       (ARRAY['ProBook 14', 'ViewMax 27', 'Smartphone S22', 'Standing Desk', 'Rack Server R740', 'Laser Printer',
              'Electric Forklift', 'Meeting Room Display'])[cat.c],
       cat.c,
       CASE WHEN cat.c = 7 THEN 2 + (g % 2) ELSE (g * 3) % 8 + 1 END,
       CASE WHEN cat.c IN (1, 3) AND g % 10 <> 0 THEN (g * 7) % 120 + 1 END,
       (ARRAY[1, 3, 5, 8, 1, 13, 10, 15])[cat.c],
       date '2019-01-15' + (g * 29) % 2400,
       (ARRAY[1150, 320, 780, 540, 6800, 390, 24000, 1900])[cat.c] + (g % 5) * 10,
       CASE WHEN g % 19 = 0 THEN 'disposed' WHEN g % 13 = 0 THEN 'repair'
            WHEN cat.c IN (1, 3) AND g % 10 = 0 THEN 'in_stock' ELSE 'in_use' END
  FROM generate_series(1, 170) g,
       LATERAL (SELECT (ARRAY[1, 1, 2, 1, 3, 2, 4, 1, 3, 6, 1, 2, 8, 4, 1, 3, 5, 1, 2, 7])[g % 20 + 1] AS c) cat;

INSERT INTO asset_maintenance
SELECT g, a.id, a.purchased_on + 200 + (g * 31) % 500,
       (ARRAY['Battery replacement', 'Firmware update', 'Annual inspection', 'Screen repair', 'Cleaning and check'])[g % 5 + 1],
       ((g * 67) % 400 + 35)::numeric(8, 2)
  FROM generate_series(1, 60) g
  JOIN assets a ON a.id = (g * 11) % 170 + 1;

DROP TABLE tmp_names;
ANALYZE;
