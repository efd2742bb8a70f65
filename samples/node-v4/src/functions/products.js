// products: a function-level route with constraints; returns its route values as JSON.
const { app } = require('@azure/functions');

app.http('products', {
    methods: ['GET'],
    authLevel: 'function',
    route: 'products/{category:alpha}/{id:int?}',
    handler: async (request) => {
        const { category, id } = request.params;
        return { jsonBody: { category, id: id === undefined ? null : Number(id) } };
    },
});
