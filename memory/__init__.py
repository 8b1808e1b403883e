"""Remember: the vector store of stories and the relational state."""
