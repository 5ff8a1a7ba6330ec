"""The rules, pure: what a message is, how payments become calls and answers become outcomes, how
long a retry is held, and the documented limits of every outside system (``limits``). Imports
nothing of ours outside ``core``."""
