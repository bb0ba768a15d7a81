// Pure JSON transform: reshape a list of records into totals per category.
// Input:  { "items": [{ "category": "a", "amount": 2 }, ...], "round"?: number }
// Output: { "totals": { "a": 2 }, "count": 1, "largest": { ... } }
export const action = {
  run(input) {
    let data;
    try {
      data = JSON.parse(input);
    } catch {
      throw { code: 'invalid-input', message: 'input is not JSON' };
    }
    if (!data || !Array.isArray(data.items)) {
      throw { code: 'invalid-input', message: 'expected { items: [...] }' };
    }
    const totals = {};
    let largest = null;
    for (const item of data.items) {
      if (!item || typeof item.category !== 'string' || typeof item.amount !== 'number') {
        throw { code: 'invalid-input', message: 'each item needs a string category and a numeric amount' };
      }
      totals[item.category] = (totals[item.category] ?? 0) + item.amount;
      if (largest === null || item.amount > largest.amount) largest = item;
    }
    return JSON.stringify({ totals, count: data.items.length, largest });
  },
};
