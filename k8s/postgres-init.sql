-- One database per service, on one server. Run once, when the data directory is new, by the
-- postgres image's entry point (Docker Compose's `postgres` profile and the k8s StatefulSet).
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE orders;
