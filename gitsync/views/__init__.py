"""The read side the API and the web UI share: models (`models`) and the functions that build them from the state."""
