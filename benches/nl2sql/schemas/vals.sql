-- A music streaming service: countries, genres, artists, albums, tracks, listeners, their
-- subscriptions, playlists and play events. What makes it hard: answers need the stored DATA
-- VALUES (full country names, genre spellings with punctuation, accented names, odd-case
-- status and device codes, prefixed catalogue numbers), which the schema alone does not reveal.
DROP SCHEMA IF EXISTS vals CASCADE;
CREATE SCHEMA vals;
SET search_path = vals;

CREATE TABLE countries (
    id int PRIMARY KEY,
    name text NOT NULL UNIQUE,
    continent text NOT NULL
);
COMMENT ON TABLE countries IS 'Countries that artists and listeners come from';

CREATE TABLE genres (
    id int PRIMARY KEY,
    name text NOT NULL UNIQUE
);
COMMENT ON TABLE genres IS 'Music genres as shown in the app';

CREATE TABLE artists (
    id int PRIMARY KEY,
    name text NOT NULL,
    country_id int NOT NULL REFERENCES countries,
    formed_year int NOT NULL
);
COMMENT ON TABLE artists IS 'Solo artists and bands';
COMMENT ON COLUMN artists.formed_year IS 'Year of the debut (solo artists) or of the band''s formation';

CREATE TABLE albums (
    id int PRIMARY KEY,
    artist_id int NOT NULL REFERENCES artists,
    title text NOT NULL,
    genre_id int NOT NULL REFERENCES genres,
    album_type text NOT NULL,
    label text NOT NULL,
    catalogue_no text NOT NULL UNIQUE,
    release_date date NOT NULL
);
COMMENT ON TABLE albums IS 'Releases: full-length albums, EPs, singles and compilations';
COMMENT ON COLUMN albums.label IS 'Record label that released it';
COMMENT ON COLUMN albums.catalogue_no IS 'The label''s catalogue number of the release';

CREATE TABLE tracks (
    id int PRIMARY KEY,
    album_id int NOT NULL REFERENCES albums,
    track_no int NOT NULL,
    title text NOT NULL,
    duration_sec int NOT NULL,
    explicit boolean NOT NULL DEFAULT false,
    UNIQUE (album_id, track_no)
);
COMMENT ON COLUMN tracks.explicit IS 'Carries a parental advisory (explicit lyrics) flag';

CREATE TABLE listeners (
    id int PRIMARY KEY,
    display_name text NOT NULL,
    city text NOT NULL,
    country_id int NOT NULL REFERENCES countries,
    birth_year int,
    joined_on date NOT NULL
);
COMMENT ON TABLE listeners IS 'User accounts of the streaming service';
COMMENT ON COLUMN listeners.birth_year IS 'Self-declared, NULL when not given';

CREATE TABLE subscriptions (
    id int PRIMARY KEY,
    listener_id int NOT NULL REFERENCES listeners,
    plan text NOT NULL,
    status text NOT NULL,
    monthly_fee numeric(6, 2) NOT NULL,
    started_on date NOT NULL,
    ended_on date
);
COMMENT ON TABLE subscriptions IS 'Subscription history: a listener may have had several plans over time';
COMMENT ON COLUMN subscriptions.status IS 'Billing state of the subscription';
COMMENT ON COLUMN subscriptions.monthly_fee IS 'Price per month in EUR';
COMMENT ON COLUMN subscriptions.ended_on IS 'NULL while the subscription is still running';

CREATE TABLE playlists (
    id int PRIMARY KEY,
    owner_id int NOT NULL REFERENCES listeners,
    name text NOT NULL,
    is_public boolean NOT NULL,
    created_on date NOT NULL
);

CREATE TABLE playlist_tracks (
    playlist_id int NOT NULL REFERENCES playlists,
    track_id int NOT NULL REFERENCES tracks,
    position int NOT NULL,
    added_on date NOT NULL,
    PRIMARY KEY (playlist_id, track_id)
);

CREATE TABLE plays (
    id int PRIMARY KEY,
    listener_id int NOT NULL REFERENCES listeners,
    track_id int NOT NULL REFERENCES tracks,
    played_at timestamp NOT NULL,
    ms_played int NOT NULL,
    device text NOT NULL
);
COMMENT ON TABLE plays IS 'One row per stream of a track by a listener';
COMMENT ON COLUMN plays.ms_played IS 'How long the track was listened to, in milliseconds';
COMMENT ON COLUMN plays.device IS 'Client the stream was played from';

INSERT INTO countries VALUES
  (1, 'United Kingdom', 'Europe'),
  (2, 'United States of America', 'North America'),
  (3, 'Côte d''Ivoire', 'Africa'),
  (4, 'Korea, Republic of', 'Asia'),
  (5, 'Germany', 'Europe'),
  (6, 'France', 'Europe'),
  (7, 'Brazil', 'South America'),
  (8, 'Türkiye', 'Asia'),
  (9, 'Iceland', 'Europe'),
  (10, 'Canada', 'North America'),
  (11, 'Poland', 'Europe'),
  (12, 'Switzerland', 'Europe'),
  (13, 'Nigeria', 'Africa'),
  (14, 'Japan', 'Asia'),
  (15, 'Czechia', 'Europe'),
  (16, 'Sweden', 'Europe'),
  (17, 'Ireland', 'Europe'),
  (18, 'Netherlands', 'Europe');

INSERT INTO genres VALUES
  (1, 'Hip-Hop/Rap'),
  (2, 'Rock & Roll'),
  (3, 'R&B/Soul'),
  (4, 'Electronic/Dance'),
  (5, 'K-Pop'),
  (6, 'Drum & Bass'),
  (7, 'Singer/Songwriter'),
  (8, 'Jazz'),
  (9, 'Classical'),
  (10, 'Afrobeats'),
  (11, 'Lo-Fi'),
  (12, 'Coupé-Décalé'),
  (13, 'Bossa Nova'),
  (14, 'Pop');

INSERT INTO artists VALUES
  (1, 'The McDonald Brothers', 1, 1998),
  (2, 'Sigrún Ólafsdóttir', 9, 2009),
  (3, 'Les Étoiles d''Abidjan', 3, 2003),
  (4, 'DJ Kwamé Koffi', 3, 2014),
  (5, 'SEOUL:LINE', 4, 2017),
  (6, 'Hanbyeol', 4, 2015),
  (7, 'Neonröhre', 5, 1995),
  (8, 'Chloé Lavigne', 6, 2011),
  (9, 'João Gilberto Neto', 7, 2001),
  (10, 'Notorious R.E.X.', 2, 1994),
  (11, 'Lil Tëmpo', 2, 2018),
  (12, 'Little Richie & the Rockets', 2, 1987),
  (13, 'Ms. Dynamite Jones', 1, 2006),
  (14, 'Łukasz Żuk Trio', 11, 2008),
  (15, 'Grüezi Beats', 12, 2012),
  (16, 'DJ Ångström', 16, 2004),
  (17, 'Yoko & the Kōans', 14, 2016),
  (18, 'Dvořák String Quartet', 15, 1979),
  (19, 'Céline Marchand', 10, 2010),
  (20, 'Aoife Ní Bhriain', 17, 2013),
  (21, 'Nnamdi & Co.', 13, 2015),
  (22, 'Istanbul Ekspres', 8, 2007),
  (23, 'Bassline Theory', 1, 1999),
  (24, 'Tokyo Lo-Fi Club', 14, 2019),
  (25, 'Amsterdam Klassiek', 18, 1990),
  (26, 'Kid Montréal', 10, 2012),
  (27, 'Blue Note Reverie', 2, 2002),
  (28, 'Saint-Émile', 6, 2008);

-- Each artist releases 2 to 4 records in the artist's genre.
INSERT INTO albums
SELECT n,
       a.artist_id,
       (ARRAY['Midnight', 'Golden', 'Broken', 'Electric', 'Silent', 'Velvet', 'Neon', 'Paper',
              'Northern', 'Crimson'])[n % 10 + 1] || ' ' ||
       (ARRAY['Hearts', 'Skies', 'Rivers', 'Dreams', 'Echoes', 'Streets', 'Lights', 'Waves',
              'Machines', 'Gardens', 'Letters'])[n % 11 + 1],
       a.genre_id,
       CASE WHEN n % 11 = 0 THEN 'Compilation' WHEN n % 7 = 0 THEN 'EP' WHEN n % 5 = 2 THEN 'Single'
            ELSE 'Album' END,
       (ARRAY['XL Recordings', 'Sub Pop', 'Def Jam Recordings', 'Warp Records', 'Rough Trade',
              'Ninja Tune', 'self-released', 'Deutsche Grammophon'])[(n * 3 + a.artist_id) % 8 + 1],
       'CAT-' || lpad((300 + n * 13)::text, 5, '0'),
       make_date(least(a.formed + j * 3 + (n % 2), 2024), (n * 5) % 12 + 1, (n * 11) % 28 + 1)
  FROM (SELECT a.artist_id, a.genre_id, ar.formed_year AS formed, j,
               row_number() OVER (ORDER BY a.artist_id, j)::int AS n
          FROM (VALUES (1, 2), (2, 7), (3, 12), (4, 10), (5, 5), (6, 3), (7, 4), (8, 14), (9, 13),
                       (10, 1), (11, 1), (12, 2), (13, 3), (14, 8), (15, 4), (16, 6), (17, 11),
                       (18, 9), (19, 7), (20, 7), (21, 10), (22, 14), (23, 6), (24, 11), (25, 9),
                       (26, 1), (27, 8), (28, 4)) a(artist_id, genre_id)
          JOIN artists ar ON ar.id = a.artist_id,
               generate_series(0, 1 + (a.artist_id * 5) % 3) j) a;

-- Track counts follow the release type.
INSERT INTO tracks
SELECT row_number() OVER (ORDER BY al.id, t)::int,
       al.id, t,
       (ARRAY['Falling', 'Running', 'Dancing', 'Waiting', 'Burning', 'Drifting', 'Calling',
              'Holding', 'Chasing', 'Fading', 'Singing', 'Dreaming', 'Breaking'])[(al.id * 7 + t) % 13 + 1] || ' ' ||
       (ARRAY['Home', 'Slowly', 'Tonight', 'Again', 'Away', 'Forever', 'in the Rain', 'for You',
              'Alone', 'Upstairs', 'in Blue'])[(al.id + t * 3) % 11 + 1],
       150 + (al.id * 37 + t * 53) % 211,
       (al.id * 3 + t) % 9 = 0
  FROM albums al,
       generate_series(1, CASE al.album_type WHEN 'Album' THEN 9 + al.id % 4 WHEN 'EP' THEN 5
                               WHEN 'Single' THEN 2 ELSE 14 END) t;
-- Classical pieces run longer.
UPDATE tracks t SET duration_sec = duration_sec + 420
  FROM albums al WHERE al.id = t.album_id AND al.genre_id = 9;

-- 150 listeners; city (with its country) from a weighted pool.
INSERT INTO listeners
SELECT g,
       (ARRAY['Zoë', 'Jon', 'Søren', 'Chloé', 'José', 'Aoife', 'Łukasz', 'Renée', 'Björn',
              'François', 'Siobhán', 'Mateus', 'Ana'])[(g - 1) % 13 + 1] || ' ' ||
       (ARRAY['Saldaña', 'McDonald', 'Kierkegaard', 'Müller', 'O''Brien', 'García', 'Nguyen',
              'Dvořák', 'Ødegaard', 'MacLeod', 'Silva', 'D''Souza'])[(g - 1) % 12 + 1],
       c.city, c.country_id,
       CASE WHEN g % 9 = 4 THEN NULL ELSE 1960 + (g * 17) % 47 END,
       date '2019-01-01' + (g * 211) % 2000
  FROM generate_series(1, 150) g
  JOIN (VALUES (1, 'London', 1), (2, 'Manchester', 1), (3, 'Glasgow', 1),
               (4, 'New York City', 2), (5, 'St. Louis', 2), (6, 'Los Angeles', 2),
               (7, 'Abidjan', 3), (8, 'Seoul', 4), (9, 'Berlin', 5), (10, 'Düsseldorf', 5),
               (11, 'Paris', 6), (12, 'São Paulo', 7), (13, 'Istanbul', 8), (14, 'Reykjavík', 9),
               (15, 'Montréal', 10), (16, 'Toronto', 10), (17, 'Kraków', 11), (18, 'Zürich', 12),
               (19, 'Lagos', 13), (20, 'Tokyo', 14), (21, 'Prague', 15), (22, 'Malmö', 16),
               (23, 'Dublin', 17), (24, 'Amsterdam', 18)) c(k, city, country_id)
    ON c.k = (ARRAY[1, 1, 1, 1, 2, 2, 3, 4, 4, 4, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 11, 11, 12,
                    12, 12, 13, 14, 15, 15, 16, 17, 18, 19, 20, 20, 21, 22, 23, 24])[(g * 17) % 40 + 1];

-- Current subscription of every listener, plus an earlier, cancelled one for some.
INSERT INTO subscriptions
SELECT g, g, p.plan,
       (ARRAY['active', 'active', 'active', 'PAST_DUE', 'active', 'on-hold', 'trial', 'active',
              'cancelled', 'active', 'PAST_DUE'])[(g * 7) % 11 + 1],
       p.fee,
       date '2023-01-01' + (g * 53) % 600,
       NULL
  FROM generate_series(1, 150) g
  JOIN (VALUES (0, 'Free', 0.00), (1, 'Premium Individual', 10.99), (2, 'Premium Duo', 14.99),
               (3, 'Premium Family', 17.99), (4, 'Student', 5.99), (5, 'Premium Individual', 10.99),
               (6, 'Free', 0.00)) p(k, plan, fee)
    ON p.k = (g * 5) % 7;
UPDATE subscriptions SET ended_on = started_on + 30 + id % 200 WHERE status = 'cancelled';
UPDATE subscriptions SET monthly_fee = 0 WHERE status = 'trial';
INSERT INTO subscriptions
SELECT 150 + g, g * 3, CASE WHEN g % 2 = 0 THEN 'Free' ELSE 'Student' END, 'cancelled',
       CASE WHEN g % 2 = 0 THEN 0.00 ELSE 5.99 END,
       date '2021-01-01' + (g * 29) % 500, date '2022-12-31'
  FROM generate_series(1, 50) g;

INSERT INTO playlists
SELECT n,
       (ARRAY[12, 45, 88, 7, 130, 61, 3, 99, 25, 140, 16, 72, 54, 33, 118, 80, 19, 3, 5, 41, 107,
              66, 91, 10, 124])[n],
       name, n % 4 <> 0, date '2022-03-01' + (n * 47) % 900
  FROM unnest(ARRAY['Chill Vibes', 'Workout Mix', 'Road Trip ''24', 'Sunday Mornin''',
                    'Late Night Lo-Fi', 'Throwbacks', 'Focus & Study', 'Party Starters',
                    'Rainy Days', 'Dinner Jazz', 'Summer Hits', 'Deep Focus', 'Gym Beast Mode',
                    'Coffee Shop', 'Sleep Sounds', 'Indie Finds', 'Afro Heat', 'Classical Essentials',
                    'K-Pop Daebak', 'Bass Weight', 'Wedding Dance', 'Kitchen Disco', 'Sad Bangers',
                    'Old School Hip-Hop', 'Soulful Sundays']) WITH ORDINALITY AS x(name, ord), LATERAL (SELECT ord::int AS n) y;

INSERT INTO playlist_tracks
SELECT p.id, tr, row_number() OVER (PARTITION BY p.id ORDER BY k)::int,
       p.created_on + k * 3
  FROM playlists p,
       generate_series(1, 8 + (p.id * 7) % 17) k,
       LATERAL (SELECT ((p.id * 131 + k * 29) % (SELECT count(*) FROM tracks))::int + 1 AS tr) x;

INSERT INTO plays
SELECT g,
       (g * 37 + g / 11) % 150 + 1,
       t.id,
       timestamp '2024-01-01 00:00' + ((g * 97) % 366) * interval '1 day'
         + ((g * 13) % 24) * interval '1 hour' + ((g * 7) % 60) * interval '1 minute',
       CASE WHEN g % 6 = 0 THEN (t.duration_sec * 1000 * ((g % 5) + 1)) / 10
            ELSE t.duration_sec * 1000 END,
       (ARRAY['iOS', 'android', 'iOS', 'Web Player', 'android', 'smart_speaker', 'CarPlay',
              'android', 'Desktop App', 'iOS', 'android'])[(g * 3 + g / 17) % 11 + 1]
  FROM generate_series(1, 5000) g
  JOIN tracks t ON t.id = ((g * 53 + (g * g) % 97) % (SELECT count(*) FROM tracks))::int + 1;

ANALYZE;
