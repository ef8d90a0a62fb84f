"""Development tooling (not installed): throwaway PostgreSQL and Kafka, see services.py."""
