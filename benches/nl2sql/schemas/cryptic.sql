-- A legacy Portuguese bank-assurance core system (branches, staff, customers, accounts,
-- transactions, cards, insurance policies and claims) with cryptic table/column names and
-- single-letter status codes. Every table and column carries a COMMENT; questions use plain
-- business words, so the model must read the comments to map words to columns and codes.
DROP SCHEMA IF EXISTS cryptic CASCADE;
CREATE SCHEMA cryptic;
SET search_path = cryptic;

-- ---------------------------------------------------------------- regions and branches
CREATE TABLE t_rgn (
    rgn_cd char(1) PRIMARY KEY,
    rgn_nm text NOT NULL
);
COMMENT ON TABLE t_rgn IS 'Commercial regions the branch network is divided into';
COMMENT ON COLUMN t_rgn.rgn_cd IS 'Region code: N = North, C = Centre, L = Lisbon, S = South, I = Islands (Madeira and Azores)';
COMMENT ON COLUMN t_rgn.rgn_nm IS 'Region name';

INSERT INTO t_rgn VALUES ('N', 'North'), ('C', 'Centre'), ('L', 'Lisbon'), ('S', 'South'), ('I', 'Islands');

CREATE TABLE t_brn (
    br_cd char(3) PRIMARY KEY,
    br_nm text NOT NULL,
    cty_nm text NOT NULL,
    rgn char(1) NOT NULL REFERENCES t_rgn,
    opn_dt date NOT NULL,
    act_fl char(1) NOT NULL DEFAULT 'Y' CHECK (act_fl IN ('Y', 'N'))
);
COMMENT ON TABLE t_brn IS 'Bank branches (agencies)';
COMMENT ON COLUMN t_brn.br_cd IS 'Branch code';
COMMENT ON COLUMN t_brn.br_nm IS 'Branch name';
COMMENT ON COLUMN t_brn.cty_nm IS 'City where the branch is located';
COMMENT ON COLUMN t_brn.rgn IS 'Region code of the branch, see t_rgn';
COMMENT ON COLUMN t_brn.opn_dt IS 'Date the branch opened';
COMMENT ON COLUMN t_brn.act_fl IS 'Branch still operating: Y = open, N = permanently closed';

INSERT INTO t_brn VALUES
    ('B01', 'Porto Aliados', 'Porto', 'N', '1987-03-02', 'Y'),
    ('B02', 'Braga Centro', 'Braga', 'N', '1991-06-17', 'Y'),
    ('B03', 'Guimaraes', 'Guimaraes', 'N', '2001-09-10', 'Y'),
    ('B04', 'Coimbra Baixa', 'Coimbra', 'C', '1989-01-16', 'Y'),
    ('B05', 'Aveiro Ria', 'Aveiro', 'C', '1998-04-06', 'Y'),
    ('B06', 'Viseu Rossio', 'Viseu', 'C', '2004-11-22', 'N'),
    ('B07', 'Lisboa Chiado', 'Lisbon', 'L', '1985-10-01', 'Y'),
    ('B08', 'Lisboa Parque das Nacoes', 'Lisbon', 'L', '1999-05-03', 'Y'),
    ('B09', 'Setubal Bocage', 'Setubal', 'L', '2003-02-24', 'Y'),
    ('B10', 'Faro Marina', 'Faro', 'S', '1994-07-11', 'Y'),
    ('B11', 'Evora Giraldo', 'Evora', 'S', '2008-03-31', 'N'),
    ('B12', 'Funchal Se', 'Funchal', 'I', '1996-12-02', 'Y'),
    ('B13', 'Ponta Delgada', 'Ponta Delgada', 'I', '2010-06-14', 'Y');

-- ---------------------------------------------------------------- employees
CREATE TABLE t_emp (
    e_id int PRIMARY KEY,
    e_nm text NOT NULL,
    br_cd char(3) NOT NULL REFERENCES t_brn,
    rl_cd char(1) NOT NULL CHECK (rl_cd IN ('M', 'T', 'A', 'I')),
    hr_dt date NOT NULL,
    sal_amt numeric(10, 2) NOT NULL,
    mgr_e_id int REFERENCES t_emp
);
COMMENT ON TABLE t_emp IS 'Bank staff';
COMMENT ON COLUMN t_emp.e_id IS 'Employee number';
COMMENT ON COLUMN t_emp.e_nm IS 'Employee full name';
COMMENT ON COLUMN t_emp.br_cd IS 'Branch where the employee works';
COMMENT ON COLUMN t_emp.rl_cd IS 'Job role: M = branch manager, T = teller, A = account advisor, I = insurance agent';
COMMENT ON COLUMN t_emp.hr_dt IS 'Hire date';
COMMENT ON COLUMN t_emp.sal_amt IS 'Gross monthly salary in EUR';
COMMENT ON COLUMN t_emp.mgr_e_id IS 'Employee number of the direct manager (NULL for branch managers)';

-- 5 employees per open branch: manager, two tellers, an account advisor, an insurance agent.
INSERT INTO t_emp
SELECT e,
       (ARRAY['Rui', 'Ana', 'Tiago', 'Ines', 'Paulo', 'Marta', 'Nuno', 'Sofia', 'Hugo', 'Carla',
              'Bruno', 'Rita', 'Diogo', 'Helena', 'Filipe'])[(e * 7) % 15 + 1] || ' ' ||
       (ARRAY['Sousa', 'Rocha', 'Lopes', 'Cardoso', 'Teixeira', 'Moreira', 'Correia', 'Mendes',
              'Nunes', 'Soares', 'Vieira', 'Monteiro', 'Pinto'])[(e * 5 + e / 13) % 13 + 1],
       'B' || lpad(((e - 1) / 5 + 1)::text, 2, '0'),
       (ARRAY['M', 'T', 'T', 'A', 'I'])[(e - 1) % 5 + 1],
       date '1990-01-01' + (e * 1733) % 12000,
       CASE (e - 1) % 5 WHEN 0 THEN 4200 WHEN 3 THEN 2600 WHEN 4 THEN 2300 ELSE 1450 END
           + (e * 37) % 400,
       NULL
FROM generate_series(1, 65) e;
DELETE FROM t_emp e USING t_brn b WHERE b.br_cd = e.br_cd AND b.act_fl = 'N';  -- staff of closed branches left
UPDATE t_emp SET mgr_e_id = e_id - (e_id - 1) % 5 WHERE rl_cd <> 'M';

-- ---------------------------------------------------------------- customers
CREATE TABLE t_cst (
    c_id int PRIMARY KEY,
    c_nm text NOT NULL,
    c_dob date NOT NULL,
    c_gnd char(1) NOT NULL CHECK (c_gnd IN ('M', 'F')),
    nif_no char(9) NOT NULL UNIQUE,
    br_cd char(3) NOT NULL REFERENCES t_brn,
    c_seg char(1) NOT NULL CHECK (c_seg IN ('R', 'P', 'B')),
    sts_fl char(1) NOT NULL CHECK (sts_fl IN ('A', 'I', 'D')),
    onb_dt date NOT NULL
);
COMMENT ON TABLE t_cst IS 'Customers (clients) of the bank and of its insurance arm';
COMMENT ON COLUMN t_cst.c_id IS 'Customer number';
COMMENT ON COLUMN t_cst.c_nm IS 'Customer full name';
COMMENT ON COLUMN t_cst.c_dob IS 'Date of birth';
COMMENT ON COLUMN t_cst.c_gnd IS 'Gender: M = male, F = female';
COMMENT ON COLUMN t_cst.nif_no IS 'Tax identification number (NIF)';
COMMENT ON COLUMN t_cst.br_cd IS 'Home branch that manages the customer relationship';
COMMENT ON COLUMN t_cst.c_seg IS 'Customer segment: R = retail (mass market), P = private banking, B = small business';
COMMENT ON COLUMN t_cst.sts_fl IS 'Customer status: A = active, I = inactive (dormant), D = deceased';
COMMENT ON COLUMN t_cst.onb_dt IS 'Date the customer relationship started (onboarding)';

INSERT INTO t_cst
SELECT i,
       (ARRAY['Maria', 'Ana', 'Joana', 'Beatriz', 'Catarina', 'Mariana', 'Ines', 'Sara', 'Patricia', 'Teresa',
              'Joao', 'Jose', 'Antonio', 'Manuel', 'Pedro', 'Francisco', 'Luis', 'Miguel', 'Carlos', 'Ricardo'])[i % 20 + 1]
       || ' ' ||
       (ARRAY['Silva', 'Santos', 'Ferreira', 'Pereira', 'Oliveira', 'Costa', 'Rodrigues', 'Martins', 'Jesus',
              'Sousa', 'Fernandes', 'Goncalves', 'Gomes', 'Lopes', 'Marques', 'Alves', 'Almeida', 'Ribeiro',
              'Pinto', 'Carvalho', 'Teixeira', 'Moreira', 'Correia', 'Mendes', 'Nunes'])[(i % 20 + i / 20) % 25 + 1],
       date '1938-01-01' + (i * 4373) % 23000,
       CASE WHEN i % 20 < 10 THEN 'F' ELSE 'M' END,
       lpad((100000000 + i * 2718281 % 899999999)::text, 9, '0'),
       (ARRAY['B01', 'B07', 'B02', 'B04', 'B01', 'B08', 'B10', 'B05', 'B07', 'B03', 'B12', 'B01', 'B09',
              'B06', 'B13', 'B04', 'B11', 'B07', 'B01', 'B02'])[((i * 13) % 97) % 20 + 1],
       CASE WHEN i % 11 = 0 THEN 'P' WHEN i % 7 = 3 THEN 'B' ELSE 'R' END,
       CASE WHEN i % 29 = 17 THEN 'D' WHEN i % 13 = 5 THEN 'I' ELSE 'A' END,
       greatest(date '2005-01-01' + (i * 6143) % 7000, date '1938-01-01' + (i * 4373) % 23000 + 6600)
FROM generate_series(1, 300) i;

-- ---------------------------------------------------------------- accounts
CREATE TABLE t_acct_typ (
    acct_typ_cd char(2) PRIMARY KEY,
    typ_ds text NOT NULL
);
COMMENT ON TABLE t_acct_typ IS 'Reference table of deposit and credit account product types';
COMMENT ON COLUMN t_acct_typ.acct_typ_cd IS 'Account type code';
COMMENT ON COLUMN t_acct_typ.typ_ds IS 'Account type description';
INSERT INTO t_acct_typ VALUES
    ('CK', 'Current (checking) account'), ('SV', 'Savings account'),
    ('TD', 'Term deposit'), ('LN', 'Personal loan');

CREATE TABLE t_acct (
    a_id int PRIMARY KEY,
    acct_no char(12) NOT NULL UNIQUE,
    c_id int NOT NULL REFERENCES t_cst,
    br_cd char(3) NOT NULL REFERENCES t_brn,
    acct_typ_cd char(2) NOT NULL REFERENCES t_acct_typ,
    cur_cd char(3) NOT NULL,
    bal_amt numeric(12, 2) NOT NULL,
    opn_dt date NOT NULL,
    cls_dt date,
    sts_fl char(1) NOT NULL CHECK (sts_fl IN ('A', 'C', 'S'))
);
COMMENT ON TABLE t_acct IS 'Customer accounts (current, savings, term deposits and loans)';
COMMENT ON COLUMN t_acct.a_id IS 'Internal account id';
COMMENT ON COLUMN t_acct.acct_no IS 'Account number shown to the customer';
COMMENT ON COLUMN t_acct.c_id IS 'Account holder (customer)';
COMMENT ON COLUMN t_acct.br_cd IS 'Branch where the account is domiciled (may differ from the customer home branch)';
COMMENT ON COLUMN t_acct.acct_typ_cd IS 'Account type: CK = current/checking, SV = savings, TD = term deposit, LN = personal loan (see t_acct_typ)';
COMMENT ON COLUMN t_acct.cur_cd IS 'ISO 4217 currency of the account: EUR, USD or GBP';
COMMENT ON COLUMN t_acct.bal_amt IS 'Current balance in the account currency; for loans, the outstanding principal still owed';
COMMENT ON COLUMN t_acct.opn_dt IS 'Date the account was opened';
COMMENT ON COLUMN t_acct.cls_dt IS 'Date the account was closed (NULL while not closed)';
COMMENT ON COLUMN t_acct.sts_fl IS 'Account status: A = active, C = closed, S = suspended (frozen)';

INSERT INTO t_acct
SELECT row_number() OVER (ORDER BY c_id, k),
       'PT' || lpad((c_id * 1000 + k * 17)::text, 10, '0'),
       c_id,
       CASE WHEN k = 3 AND c_id % 10 = 3 THEN 'B07' ELSE br_cd END,
       typ, cur, CASE WHEN sts = 'C' THEN 0 ELSE bal END,
       opn, CASE WHEN sts = 'C' THEN least(opn + 200 + (c_id * 13) % 500, date '2024-12-20') END,
       sts
FROM (
    SELECT c.c_id, c.br_cd, k,
           CASE k WHEN 1 THEN CASE WHEN c.c_id % 4 = 0 THEN 'SV' ELSE 'CK' END
                  WHEN 2 THEN CASE WHEN c.c_id % 4 = 1 THEN 'TD' ELSE 'SV' END
                  ELSE CASE WHEN c.c_id % 2 = 1 THEN 'LN' ELSE 'TD' END END AS typ,
           CASE WHEN k = 3 OR (k = 2 AND c.c_id % 4 = 1) THEN 'EUR'
                WHEN (c.c_id + k) % 8 = 0 THEN 'USD'
                WHEN (c.c_id + k) % 15 = 7 THEN 'GBP' ELSE 'EUR' END AS cur,
           round((((c.c_id * 3571 + k * 1013) % 4000000) / 100.0 + 50)
                 * CASE WHEN k = 3 THEN 3 ELSE 1 END, 2) AS bal,
           greatest(date '2016-01-01' + (c.c_id * 53 + k * 211) % 3200, c.onb_dt) AS opn,
           CASE WHEN (c.c_id * k) % 9 = 4 THEN 'C'
                WHEN (c.c_id + k) % 19 = 3 THEN 'S' ELSE 'A' END AS sts
    FROM t_cst c CROSS JOIN generate_series(1, 3) k
    WHERE (k = 1 AND c.c_id % 17 <> 0) OR (k = 2 AND c.c_id % 3 <> 0) OR (k = 3 AND c.c_id % 5 = 1)
) s;

-- ---------------------------------------------------------------- transactions
CREATE TABLE t_trx (
    t_id int PRIMARY KEY,
    a_id int NOT NULL REFERENCES t_acct,
    trx_dt date NOT NULL,
    trx_typ char(1) NOT NULL CHECK (trx_typ IN ('D', 'W', 'T')),
    trx_amt numeric(12, 2) NOT NULL CHECK (trx_amt > 0),
    chn_cd char(1) NOT NULL CHECK (chn_cd IN ('B', 'A', 'O', 'M')),
    ctr_a_id int REFERENCES t_acct,
    rvs_fl char(1) NOT NULL DEFAULT 'N' CHECK (rvs_fl IN ('Y', 'N'))
);
COMMENT ON TABLE t_trx IS 'Monetary movements on current and savings accounts (2023-2024)';
COMMENT ON COLUMN t_trx.t_id IS 'Transaction id';
COMMENT ON COLUMN t_trx.a_id IS 'Account the movement was booked on';
COMMENT ON COLUMN t_trx.trx_dt IS 'Booking date';
COMMENT ON COLUMN t_trx.trx_typ IS 'Transaction type: D = deposit, W = withdrawal, T = outgoing transfer to another account';
COMMENT ON COLUMN t_trx.trx_amt IS 'Amount, always positive, in the account currency';
COMMENT ON COLUMN t_trx.chn_cd IS 'Channel: B = branch counter, A = ATM (Multibanco), O = online banking, M = mobile app';
COMMENT ON COLUMN t_trx.ctr_a_id IS 'For transfers, the receiving account; NULL otherwise';
COMMENT ON COLUMN t_trx.rvs_fl IS 'Reversed (cancelled after booking): Y = yes, N = no';

INSERT INTO t_trx
SELECT g, e.ids[(g * 131) % e.n + 1], d, typ,
       CASE typ WHEN 'T' THEN round(((g * 7919) % 1200000) / 100.0 + 25, 2)
                ELSE round(((g * 4649) % 250000) / 100.0 + 5, 2) END,
       CASE WHEN typ = 'T' THEN (ARRAY['B', 'O', 'M', 'O', 'M'])[(g / 10) % 5 + 1]
            WHEN typ = 'W' THEN (ARRAY['A', 'A', 'B', 'A', 'M', 'A', 'B'])[(g * 3) % 7 + 1]
            ELSE (ARRAY['B', 'A', 'B', 'O', 'A', 'M', 'B'])[(g * 5) % 7 + 1] END,
       CASE WHEN typ = 'T' THEN e.ids[(g * 17 + 5) % e.n + 1] END,
       CASE WHEN g % 199 = 0 THEN 'Y' ELSE 'N' END
FROM generate_series(1, 2000) g
CROSS JOIN (SELECT array_agg(a_id ORDER BY a_id) AS ids, count(*)::int AS n
            FROM t_acct WHERE acct_typ_cd IN ('CK', 'SV') AND cur_cd = 'EUR' AND sts_fl <> 'C'
              AND opn_dt < '2023-01-01') e
CROSS JOIN LATERAL (SELECT date '2023-01-01' + (g * 37) % 731 AS d,
                           (ARRAY['D', 'D', 'D', 'D', 'W', 'W', 'W', 'W', 'T', 'T'])[(g * 7) % 10 + 1] AS typ) x;

-- ---------------------------------------------------------------- cards
CREATE TABLE t_crd (
    crd_id int PRIMARY KEY,
    a_id int NOT NULL REFERENCES t_acct,
    crd_typ char(1) NOT NULL CHECK (crd_typ IN ('D', 'C')),
    pan_lst4 char(4) NOT NULL,
    iss_dt date NOT NULL,
    exp_dt date NOT NULL,
    lmt_amt numeric(10, 2),
    blk_fl char(1) NOT NULL DEFAULT 'N' CHECK (blk_fl IN ('Y', 'N'))
);
COMMENT ON TABLE t_crd IS 'Payment cards linked to current accounts';
COMMENT ON COLUMN t_crd.crd_id IS 'Card id';
COMMENT ON COLUMN t_crd.a_id IS 'Current account the card is linked to';
COMMENT ON COLUMN t_crd.crd_typ IS 'Card type: D = debit card, C = credit card';
COMMENT ON COLUMN t_crd.pan_lst4 IS 'Last four digits of the card number';
COMMENT ON COLUMN t_crd.iss_dt IS 'Issue date';
COMMENT ON COLUMN t_crd.exp_dt IS 'Expiry date (card valid until the end of that month)';
COMMENT ON COLUMN t_crd.lmt_amt IS 'Monthly credit limit in EUR for credit cards; NULL for debit cards';
COMMENT ON COLUMN t_crd.blk_fl IS 'Card blocked (lost, stolen or fraud suspicion): Y = blocked, N = usable';

INSERT INTO t_crd
SELECT row_number() OVER (ORDER BY a.a_id, t.typ),
       a.a_id, t.typ,
       lpad(((a.a_id * 7907 + length(t.typ) * 31 + ascii(t.typ)) % 10000)::text, 4, '0'),
       a.opn_dt + 15 + (a.a_id % 30),
       (date_trunc('month', greatest(a.opn_dt, date '2021-01-01') + (a.a_id * 41) % 1500) + interval '4 years')::date,
       CASE WHEN t.typ = 'C' THEN 500 * (1 + a.a_id % 8) END,
       CASE WHEN (a.a_id + ascii(t.typ)) % 23 = 0 THEN 'Y' ELSE 'N' END
FROM t_acct a
CROSS JOIN (VALUES ('D'), ('C')) t(typ)
WHERE a.acct_typ_cd = 'CK' AND a.sts_fl <> 'C' AND (t.typ = 'D' OR a.a_id % 3 = 0);

-- ---------------------------------------------------------------- insurance
CREATE TABLE t_prd (
    prd_cd char(5) PRIMARY KEY,
    prd_nm text NOT NULL,
    lob_cd char(1) NOT NULL CHECK (lob_cd IN ('V', 'H', 'A', 'S'))
);
COMMENT ON TABLE t_prd IS 'Insurance products sold through the branches';
COMMENT ON COLUMN t_prd.prd_cd IS 'Product code';
COMMENT ON COLUMN t_prd.prd_nm IS 'Commercial product name';
COMMENT ON COLUMN t_prd.lob_cd IS 'Line of business: V = life (vida), H = home/property (habitacao), A = motor/car (automovel), S = health (saude)';
INSERT INTO t_prd VALUES
    ('VPR01', 'Vida Protecao', 'V'), ('VPP02', 'Vida Poupanca Plus', 'V'),
    ('HCS01', 'Casa Segura', 'H'), ('HCP02', 'Casa Premium', 'H'),
    ('ABS01', 'Auto Basico', 'A'), ('ATR02', 'Auto Todos os Riscos', 'A'),
    ('SMX01', 'Saude Maxima', 'S');

CREATE TABLE t_pol (
    p_id int PRIMARY KEY,
    pol_no text NOT NULL UNIQUE,
    c_id int NOT NULL REFERENCES t_cst,
    prd_cd char(5) NOT NULL REFERENCES t_prd,
    agt_e_id int NOT NULL REFERENCES t_emp,
    eff_dt date NOT NULL,
    exp_dt date NOT NULL,
    pol_prm_amt numeric(10, 2) NOT NULL,
    sum_ins_amt numeric(12, 2) NOT NULL,
    sts_fl char(1) NOT NULL CHECK (sts_fl IN ('A', 'E', 'X'))
);
COMMENT ON TABLE t_pol IS 'Insurance policies (contracts); status as of 31 December 2024';
COMMENT ON COLUMN t_pol.p_id IS 'Internal policy id';
COMMENT ON COLUMN t_pol.pol_no IS 'Policy number printed on the contract';
COMMENT ON COLUMN t_pol.c_id IS 'Policyholder (customer)';
COMMENT ON COLUMN t_pol.prd_cd IS 'Insurance product, see t_prd';
COMMENT ON COLUMN t_pol.agt_e_id IS 'Employee (insurance agent) who sold the policy';
COMMENT ON COLUMN t_pol.eff_dt IS 'Effective (start) date of cover';
COMMENT ON COLUMN t_pol.exp_dt IS 'Expiry (end) date of cover';
COMMENT ON COLUMN t_pol.pol_prm_amt IS 'Annual premium in EUR';
COMMENT ON COLUMN t_pol.sum_ins_amt IS 'Sum insured (maximum cover) in EUR';
COMMENT ON COLUMN t_pol.sts_fl IS 'Policy status: A = in force, E = expired (not renewed), X = cancelled before expiry';

INSERT INTO t_pol
SELECT g, 'PL' || (2019 + (g * 97) % 2150 / 365)::text || '-' || lpad(g::text, 5, '0'),
       (g * 113) % 300 + 1, prd,
       (ARRAY[5, 10, 15, 20, 25, 35, 40, 45, 50, 60, 65, 35, 10, 35, 5, 65])[(g * 5) % 16 + 1],
       eff, CASE WHEN left(prd, 1) = 'V' THEN eff + interval '20 years' ELSE eff + interval '1 year' END,
       round(CASE left(prd, 1) WHEN 'V' THEN 180 WHEN 'H' THEN 140 WHEN 'A' THEN 310 ELSE 520 END
             * (1 + ((g * 29) % 60) / 100.0), 2),
       CASE left(prd, 1) WHEN 'V' THEN 50000 + (g % 10) * 25000 WHEN 'H' THEN 120000 + (g % 7) * 30000
                         WHEN 'A' THEN 15000 + (g % 9) * 4000 ELSE 25000 END,
       CASE WHEN g % 9 = 4 THEN 'X'
            WHEN (CASE WHEN left(prd, 1) = 'V' THEN eff + interval '20 years' ELSE eff + interval '1 year' END) < '2025-01-01' THEN 'E'
            ELSE 'A' END
FROM generate_series(1, 240) g
CROSS JOIN LATERAL (SELECT date '2019-01-01' + (g * 97) % 2150 AS eff,
                           (ARRAY['VPR01', 'HCS01', 'ABS01', 'ATR02', 'HCP02', 'SMX01', 'ABS01', 'VPP02', 'HCS01', 'ATR02', 'SMX01'])[(g * 3) % 11 + 1] AS prd) x;

CREATE TABLE t_clm (
    clm_id int PRIMARY KEY,
    p_id int NOT NULL REFERENCES t_pol,
    loss_dt date NOT NULL,
    rpt_dt date NOT NULL,
    cau_cd char(2) NOT NULL,
    clm_sts char(1) NOT NULL CHECK (clm_sts IN ('O', 'F', 'R')),
    clm_rsv numeric(12, 2) NOT NULL DEFAULT 0,
    pd_amt numeric(12, 2) NOT NULL DEFAULT 0
);
COMMENT ON TABLE t_clm IS 'Insurance claims (sinistros) filed against policies';
COMMENT ON COLUMN t_clm.clm_id IS 'Claim id';
COMMENT ON COLUMN t_clm.p_id IS 'Policy the claim is filed under';
COMMENT ON COLUMN t_clm.loss_dt IS 'Date the loss event happened';
COMMENT ON COLUMN t_clm.rpt_dt IS 'Date the claim was reported to the insurer';
COMMENT ON COLUMN t_clm.cau_cd IS 'Cause of loss: FI = fire, WA = water damage, TH = theft, CO = car collision, GL = glass breakage, DE = death, IL = illness/hospitalisation';
COMMENT ON COLUMN t_clm.clm_sts IS 'Claim status: O = open (being handled), F = finalised (settled and paid), R = rejected (not covered)';
COMMENT ON COLUMN t_clm.clm_rsv IS 'Outstanding reserve in EUR: amount set aside for what is still expected to be paid (0 once the claim is closed)';
COMMENT ON COLUMN t_clm.pd_amt IS 'Amount already paid to the claimant in EUR';

INSERT INTO t_clm
SELECT row_number() OVER (ORDER BY p.p_id, k), p.p_id, l.loss, l.loss + 2 + (p.p_id * k) % 25,
       CASE left(p.prd_cd, 1)
            WHEN 'H' THEN (ARRAY['WA', 'FI', 'TH', 'WA', 'GL'])[(p.p_id + k) % 5 + 1]
            WHEN 'A' THEN (ARRAY['CO', 'GL', 'CO', 'TH'])[(p.p_id + k) % 4 + 1]
            WHEN 'V' THEN 'DE' ELSE 'IL' END,
       s.sts,
       CASE WHEN s.sts = 'O' THEN round(amt * 0.6, 2) ELSE 0 END,
       CASE WHEN s.sts = 'F' THEN amt WHEN s.sts = 'O' THEN round(amt * 0.25, 2) ELSE 0 END
FROM t_pol p
CROSS JOIN generate_series(1, 2) k
CROSS JOIN LATERAL (SELECT least(p.eff_dt + (p.p_id * 31 * k) % 300, date '2024-12-10') AS loss,
                           round(CASE left(p.prd_cd, 1) WHEN 'V' THEN 40000 WHEN 'H' THEN 1500 WHEN 'A' THEN 2200 ELSE 900 END
                                 * (0.5 + ((p.p_id * 71 + k * 13) % 100) / 50.0), 2) AS amt) l
CROSS JOIN LATERAL (SELECT CASE WHEN (p.p_id + k) % 6 = 0 THEN 'R'
                                WHEN l.loss >= date '2024-06-01' OR (p.p_id * k) % 7 = 2 THEN 'O'
                                ELSE 'F' END AS sts) s
WHERE (k = 1 AND p.p_id % 3 = 1 AND (left(p.prd_cd, 1) <> 'V' OR p.p_id % 4 = 1))
   OR (k = 2 AND p.p_id % 8 = 2 AND left(p.prd_cd, 1) IN ('H', 'A'));

ANALYZE;
