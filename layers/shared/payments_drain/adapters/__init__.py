"""One adapter per outside system (HubSpot, DynamoDB's ledger and rate slots, SQS, Secrets
Manager): each turns the system's protocol and errors into the core's terms. Imports ``core``."""
